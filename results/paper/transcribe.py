"""Transcribe Tables V-XI of the main paper from its text into dplib/analysis/paper/scores.csv (package data).

    python results/paper/transcribe.py ../shared/seeds/000_af40cc5d3e1561c4.txt

The numbers are read by this script from the text, never typed by hand. What the text
extraction damaged (Table VIII, Table XI) is handled as results/paper/README.md says:
cells whose column the text does not determine are left out, cells that are kept but
uncertain carry a `note`.
"""

import csv
import re
import sys
from pathlib import Path

NAMES = {  # the paper's names -> torchvision's
    "VGG-11": "vgg11", "VGG-16": "vgg16", "VGG-16_bn": "vgg16_bn", "VGG-19": "vgg19",
    "ResNet-18": "resnet18", "ResNet-50": "resnet50", "ResNeXt-50 32x4d": "resnext50_32x4d",
    "GoogLeNet": "googlenet", "InceptionNet v3": "inception_v3",
    "EfficientNet_B0": "efficientnet_b0", "EfficientNet_B7": "efficientnet_b7",
    "AlexNet": "alexnet", "DenseNet-121": "densenet121", "SqueezeNet": "squeezenet1_1",
}
POINTS = ("early", "semi_early", "mid", "late")
NUMBER = r"\d+\.\d"  # every score in these tables has at least one decimal

# Tables whose rows survived as "name<TAB>numbers", in the order they appear after the appendix
# heading, with the (benchmark, score, dataset, scale) of each block of four columns.
TABLES = [
    ("V", [("b1", "2afc", "all", ""), ("b1", "jnd_map", "all", "")]),
    ("VI", [("b2", "psnr", d, 4) for d in ("set5", "set14", "bsd100")]),
    ("VII", [("b2", "ssim", d, 4) for d in ("set5", "set14", "bsd100")]),
    ("IX", [("b2", "ssim", d, 8) for d in ("set5", "set14", "bsd100")]),
    ("X", [("b3", s, "mrd", "") for s in ("correctness", "completeness", "quality")]),
    ("XI", [("b4", "accuracy", d, "") for d in ("svhn", "stl10")]),
]
TABLE_VIII = [("b2", "psnr", d, 8) for d in ("set5", "set14", "bsd100")]


def _name_pattern():
    names = sorted(NAMES, key=len, reverse=True)
    return "|".join(re.escape(n).replace("_", r"\\?_") for n in names)


def _split_merged(numbers):
    """'20.119.7' (two cells run together by the extraction) -> ['20.1', '19.7']."""
    out = []
    for token in numbers:
        out += re.findall(r"\d+\.\d", token) if token.count(".") > 1 else [token]
    return out


def table_rows(text):
    """(table, arch, values) for each row line of the tab-separated tables after the appendix."""
    appendix = text[text.index("## APPENDIX"):]
    row = re.compile(rf"^({_name_pattern()})\t([\d.\t ]+)$")
    rows = []
    for line in appendix.splitlines():
        match = row.match(line.strip())
        if match:
            rows.append((NAMES[match.group(1).replace("\\_", "_")], match.group(2).split()))
    tables, index = [], 0
    for table, blocks in TABLES:
        width = 4 * len(blocks)
        count = 0
        while index < len(rows) and len(rows[index][1]) in (width, width - 1) and count < 14:
            arch, values = rows[index]
            tables.append((table, blocks, arch, values))
            index += 1
            count += 1
    return tables


def table_viii_rows(text):
    """Table VIII came out as one line with cells moved. Rows whose twelve numbers stand
    together right after the name are kept in printed order; other rows are left out."""
    line = next(l for l in text.splitlines() if l.startswith("BSD100 Set 5 Set 14"))
    line = line.replace("\\_", "_")
    pattern = re.compile(rf"({_name_pattern()})((?:\s*{NUMBER})+)")
    kept, broken = [], []
    for match in pattern.finditer(line):
        arch = NAMES[match.group(1)]
        numbers = _split_merged(match.group(2).split())
        if len(numbers) >= 12:
            kept.append((arch, numbers[:12]))
        else:
            broken.append(arch)
    return kept, broken


def transcribe(text):
    rows = []
    for table, blocks, arch, values in table_rows(text):
        for i, value in enumerate(values):
            benchmark, score, dataset, scale = blocks[i // 4]
            point = POINTS[i % 4]
            note = ""
            if table == "XI" and dataset == "stl10" and point == "late" and len(value.split(".")[1]) < 3:
                note = "Table XI STL-10 Late: cut to two digits by the text extraction (printed with three)"
            rows.append(dict(benchmark=benchmark, score=score, dataset=dataset, scale=scale, arch=arch,
                             point=point, value=value, note=note))
    kept, _ = table_viii_rows(text)
    for arch, values in kept:
        for i, value in enumerate(values):
            benchmark, score, dataset, scale = TABLE_VIII[i // 4]
            rows.append(dict(benchmark=benchmark, score=score, dataset=dataset, scale=scale, arch=arch,
                             point=POINTS[i % 4], value=value,
                             note="Table VIII: cells moved by the text extraction; this row's 12 numbers "
                                  "stood together and are read in printed order"))
    return rows


def _printed_rows(text, start, end, width):
    """Rows 'Name [ref]<TAB>cells' of a printed summary table between two headings."""
    block = text[text.index(start):text.index(end, text.index(start))]
    row = re.compile(rf"^({_name_pattern()})(?: 1\.1)? \[\d+\]\t(.*)$")
    rows = []
    for line in block.splitlines():
        match = row.match(line.strip())
        if match:
            cells = match.group(2).split("\t")
            if len(cells) == width:
                rows.append([NAMES[match.group(1).replace("\\_", "_")]] + cells)
    return rows


# Cyrillic look-alikes the extraction put into Table IV's letters
LATIN = str.maketrans({"Е": "E", "М": "M", "Μ": "M", "Ѕ": "S"})
TABLE_IV_COLUMNS = ["2afc", "jnd_map", "ssim_x4_bsd100", "ssim_x8_bsd100", "mrd_all", "svhn", "stl10"]


def printed_summary_tables(text, folder):
    """Table III (average ranks) and Table IV (best points) as printed, for comparison."""
    with open(folder / "table_3.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "b1", "b2", "b3", "b4", "all"])
        writer.writerows(_printed_rows(text, "TABLE III", "performance is presented", 5))
    letters = {"E": "early", "S": "semi_early", "M": "mid", "L": "late"}
    with open(folder / "table_4.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch"] + TABLE_IV_COLUMNS)
        for arch, *cells in _printed_rows(text, "TABLE IV", "downstream performance that is often", 7):
            writer.writerow([arch] + [letters[c.strip().translate(LATIN)] for c in cells])


def main(source, out=Path(__file__).parents[2] / "dplib" / "analysis" / "paper" / "scores.csv"):
    text = Path(source).read_text()
    printed_summary_tables(text, Path(out).parent)
    rows = transcribe(text)
    order = {"b1": 0, "b2": 1, "b3": 2, "b4": 3}
    rows.sort(key=lambda r: (order[r["benchmark"]], r["score"], str(r["scale"]), r["dataset"]))
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["benchmark", "score", "dataset", "scale", "arch", "point", "value", "note"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} cells -> {out}")


if __name__ == "__main__":
    main(sys.argv[1])
