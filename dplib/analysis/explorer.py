"""The supplementary spreadsheet as an explorer: any attribute against any score over the
loss networks, chosen with ipywidgets controls (notebooks/explore.ipynb)."""

from ..benchmarks import direction
from .figures import figure_png, scatter
from .tables import KEY, point_attributes, score_key


def explore(scores, attributes, attribute, key, color_by="point"):
    """The explore notebook's controls: a Dropdown for the attribute (x), one for the score (y),
    ToggleButtons for the colours, and `scatter` below them, redrawn on every change.
    Returns an ipywidgets.VBox; display it.

    Figures go into the output area as data (Output.outputs), never by capturing what a cell
    displays: a headless client (papermill's nbclient) answers captured output with comm
    messages that ipykernel 7 handles while the cell still runs, and the cell's reply can be
    lost, so the notebook hangs (papermill issue 723, nbclient issue 312). JupyterLab renders
    both the same way.
    """
    import base64

    import ipywidgets as widgets

    # (label, key): a score its benchmark's record calls lower-is-better says so in the list
    lower = {score_key(r): direction(r["benchmark"], r["score"]) == "lower" for r in scores[KEY].to_dict("records")}
    keys = sorted(lower)
    options = [(f"{k} (lower is better)" if lower[k] else k, k) for k in keys]
    x = widgets.Dropdown(options=point_attributes(attributes), value=attribute, description="attribute")
    y = widgets.Dropdown(options=options, value=key if key in keys else keys[0], description="score")
    colour = widgets.ToggleButtons(options=["point", "family"], value=color_by, description="colour by")
    output = widgets.Output()

    def draw(change=None):
        png = figure_png(scatter(scores, attributes, x.value, y.value, color_by=colour.value))
        output.outputs = ({"output_type": "display_data", "metadata": {},
                           "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                    "text/plain": f"<scatter of {y.value} against {x.value}>"}},)

    for control in (x, y, colour):
        control.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([x, y]), colour, output])


