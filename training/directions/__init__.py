"""Compute and evaluate latent-editing directions for a generator file (the viewer only loads them).

    python -m training.directions --model runs/x/model.safetensors --data out/heads --out runs/x/model.directions.npz
    python -m training.directions.evaluate --model runs/x/model.safetensors --classifier runs/x/model.classifier.pt

Modules: attribute_specs (what the classifier learns from attributes.jsonl), labelled_images (reading the
dataset), classifier (tiny CNN, training, file), attribute_fit (InterFaceGAN fits on labelled samples),
pipeline (everything for one model: PCA, measured, attribute sliders), evaluate (disentanglement table and
3D-consistency drift along each slider), __main__ (the CLI).
"""
