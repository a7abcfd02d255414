"""The window around the picture: the side panels, file dialogs and drops, the quit guard, scripted runs."""
