"""The paper's analysis, rebuilt from data: the paper's own scores (shipped in `paper/`) or a
grid's collected results.

    scores                  the paper's scores and a grid's results as tidy tables
    tables                  Tables I-IV, the printed score tables V-XI, attribute correlations
    figures                 Figures 2-5, the correlation heat map, any attribute against any score
    explorer                the supplementary spreadsheet as ipywidgets controls
    autoencoder_embeddings  companion paper 003's tables from its grid
    feature_prediction      companion paper 004's table, figures and training times from its grid
    proxy, agreement        which task predicts which; the human-judgement datasets' agreement
"""

from ..extras import require

require("dplib.analysis (the tables and figures)", "pandas", "matplotlib", "seaborn")
