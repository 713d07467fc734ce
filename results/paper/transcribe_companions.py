"""Transcribe the companion papers' printed results from their text into dplib/analysis/paper/ (package data).

    python results/paper/transcribe_companions.py ../shared/seeds/003_920ee64a5991e7cf.txt \\
        ../shared/seeds/004_92b689ed7bfd54da.txt [out folder, default: dplib/analysis/paper]

autoencoder_embeddings.csv: 003's Tables III, IV (MLPs) and VI, VII (linear regressors), accuracy
    per z size and procedure on STL-10 and SVHN (the "Any" rows as z = "any"), and Table
    VIII's STL-10 and SVHN rows (reconstruction after decoder retraining, relative to the
    best). Columns: table, dataset, predictor, z, procedure, value, unit.
feature_prediction.csv: 004's Table II (mean and spread over repeats; the row labels did not
    survive the extraction, see README.md), its Table I (SVHN, z = 500) and the statements
    behind its Figures 7 and 8 (accuracy and relative training time), each with its sentence.
    Columns: table, dataset, procedure, quantity, value, spread, relation, note.
The numbers are read by this script, never typed by hand; LunarLander-v2 is left out, as
the main paper left it out (its collection is not published).
"""

import csv
import re
import sys
from pathlib import Path

OUT = Path(__file__).parents[2] / "dplib" / "analysis" / "paper"  # package data
PROCEDURES_003 = {"AE": "AE", "VAE": "VAE", "P. AE": "perceptual AE", "P. VAE": "perceptual VAE"}
TABLES_003 = {"III": ("stl10", "mlp"), "IV": ("svhn", "mlp"), "VI": ("stl10", "linear"), "VII": ("svhn", "linear")}


def _table_block(text, number):
    """The lines of the table whose caption starts with `TABLE <number>` up to the next caption."""
    start = re.search(rf"TABLE {number}(?![IVX])", text)  # "TABLE IPERFORMANCE": a caption run into its title
    if start is None:
        raise ValueError(f"TABLE {number} not found")
    rest = text[start.end():]
    end = re.search(r"\n\s*(?:#+ )?\$?TABLE|\n#+ ", rest)  # 003's Table V caption is LaTeX: " $TABLE\ V"
    return rest[:end.start() if end else None].splitlines()


def companion_003(text):
    rows = []
    for number, (dataset, predictor) in TABLES_003.items():
        header = None
        for line in _table_block(text, number):
            cells = [c.strip() for c in line.split("\t") if c.strip() and c.strip() != "•"]
            if cells[:1] == ["z size"]:
                header = [PROCEDURES_003[c] for c in cells[1:]]
            elif header and cells and re.fullmatch(r"\d+|Any", cells[0]):
                values = [float(c.rstrip("%")) for c in cells[1:]]
                assert len(values) == len(header), (number, line)
                rows += [dict(table=number, dataset=dataset, predictor=predictor, z=cells[0].lower(), procedure=p,
                              value=v, unit="percent accuracy") for p, v in zip(header, values)]
    header = None
    for line in _table_block(text, "VIII"):
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        if cells[:1] == ["Dataset"]:
            header = [PROCEDURES_003[c] for c in cells[1:]]
        elif header and cells and cells[0] in ("STL-10", "SVHN"):
            rows += [dict(table="VIII", dataset=cells[0].lower().replace("-", ""), predictor="", z="",
                          procedure=p, value=float(v.rstrip("%")), unit="percent of the best reconstruction")
                     for p, v in zip(header, cells[1:])]
    return rows


# 004's Table II lost its row labels: the rows are read in printed order and named by the
# text around them (README.md says how); Table II's columns are LunarLander, STL-10, SVHN.
TABLE_II_ROWS = ("I-I-PW", "I-I-PS", "I-F-FP", "simple CNN", "state of the art")
PLUS_MINUS = r"\$?\s*(\d+\.\d+)\s*\\pm\s*(\d+\.\d+)\s*\$?"
# (figure, dataset, procedure, quantity, relation, pattern with one number group)
STATEMENTS_004 = [
    ("7", "stl10", "I-F-FP", "accuracy", "just above", r"best performance with just above (\d+)% accuracy"),
    ("7", "stl10", "I-I-PS, F-I-PS", "accuracy", "just below", r"come in second with just below (\d+)% accuracy"),
    ("7", "stl10", "I-I-PW, F-I-PW, F-F-FP", "accuracy", "at least", r"span between (\d+)% and \d+% accuracy"),
    ("7", "stl10", "I-I-PW, F-I-PW, F-F-FP", "accuracy", "at most", r"span between \d+% and (\d+)% accuracy"),
    ("8", "stl10", "I-F-FP, F-F-FP over the others", "relative training time", "about",
     r"only about (\d+)% of the training time of the other procedures"),
    ("7", "svhn", "I-F-FP, I-I-PS", "accuracy", "slightly over", r"peaking at slightly over (\d+)% accuracy"),
    ("7", "svhn", "F-F-FP", "accuracy", "around", r"F-F-FP achieves around (\d+)% accuracy"),
    ("7", "svhn", "I-I-PW, F-I-PW, F-I-PS", "accuracy", "around", r"remaining procedures achieve around (\d+)%"),
    ("8", "svhn", "I-F-FP over I-I-PS", "relative training time", "about",
     r"I-F-FP taking only (\d+)% of the time of I-I-PS"),
]


def companion_004(text):
    rows = []
    block = _table_block(text, "II")
    numeric = [line for line in block if line.count("\\pm") == 3 and "array" not in line][:4]
    if len(numeric) != 4:
        raise ValueError(f"004 Table II: expected 4 rows of three mean +- spread cells, found {len(numeric)}")
    for label, line in zip(TABLE_II_ROWS, numeric):
        cells = re.findall(PLUS_MINUS, line)
        for dataset, (mean, spread) in zip(("lunarlander", "stl10", "svhn"), cells):
            if dataset != "lunarlander":
                rows.append(dict(table="II", dataset=dataset, procedure=label, quantity="accuracy", value=float(mean),
                                 spread=float(spread), relation="", note="row label inferred (README.md)"))
    best = next(line for line in block if re.search(r"\[\d+\]", line))
    for dataset, value in zip(("stl10", "svhn"), re.findall(r"(\d\.\d+) \[\d+\]", best)):
        rows.append(dict(table="II", dataset=dataset, procedure=TABLE_II_ROWS[-1], quantity="accuracy",
                         value=float(value), spread="", relation="", note="row label inferred (README.md)"))
    for line in _table_block(text, "I"):
        match = re.match(r"(I-I-PW|I-I-PS|I-F-FP) \((?:baseline|proposed)\)\t(\d\.\d+)$", line.strip())
        if match:
            rows.append(dict(table="I", dataset="svhn", procedure=match.group(1), quantity="accuracy, z = 500",
                             value=float(match.group(2)), spread="", relation="", note="one run"))
    for figure, dataset, procedure, quantity, relation, pattern in STATEMENTS_004:
        match = re.search(pattern, text)
        if match is None:
            raise ValueError(f"004: the statement {pattern!r} is not in the text")
        sentence = " ".join(text[text.rfind(".", 0, match.start()) + 1:text.find(".", match.end()) + 1].split())
        rows.append(dict(table=f"Fig. {figure} (text)", dataset=dataset, procedure=procedure, quantity=quantity,
                         value=float(match.group(1)) / 100, spread="", relation=relation, note=sentence))
    return rows


def write(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(paper_003, paper_004, out=OUT):
    write(companion_003(Path(paper_003).read_text()), Path(out) / "autoencoder_embeddings.csv")
    write(companion_004(Path(paper_004).read_text()), Path(out) / "feature_prediction.csv")


if __name__ == "__main__":
    main(*sys.argv[1:4])
