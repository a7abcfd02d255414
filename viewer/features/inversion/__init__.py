"""The Inversion panel's logic on top of ``inversion.pipeline``: the feature (actions, what the panel shows),
the stages as render-worker jobs, the photo inputs and the live webcam."""
