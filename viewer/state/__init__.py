"""Left-over home of ``training.py`` (the Training panel's launch form and run info), which moves into
``ui_state`` once the run-directory work has landed. It imports nothing local, so ``ui_state`` may use it."""
