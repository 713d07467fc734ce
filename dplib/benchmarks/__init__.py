"""The paper's four benchmarks, one module each, named as the notebooks name them:

    b1  perceptual similarity on BAPPS (Eq. 1, 2AFC and JND)        notebooks/b1_perceptual_similarity.ipynb
    b2  super-resolution x4 / x8 with Eq. 3 (PSNR, SSIM)             notebooks/b2_super_resolution.ipynb
    b3  road delineation with an iterative U-Net and Eq. 5           notebooks/b3_delineation.ipynb
    b4  autoencoder embeddings with Eq. 6, and the companion papers' notebooks/b4_autoencoding.ipynb
        procedures (I-I-PW ... F-F-FP, VAEs, 003's predictor search)

Each module holds its benchmark's protocol helpers (losses, validation, evaluation) and its
score rows; `record` is the run record every benchmark notebook writes (result.json);
`tutorials` the tiny live versions the teaching notebooks run. The benchmarks use the
library (dplib's top level); the grid runner (dplib.run) uses them, never the other way.
"""
