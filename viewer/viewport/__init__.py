"""The picture: the render worker (the one thread that owns models and the device), what a request becomes in
core, the GUI-side display (images or OpenGL splats), mouse/keys -> camera, and the overlays."""
