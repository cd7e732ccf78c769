"""The spots-csv plugin: DeepCell Label's spots.csv, a real decoded-spots table, CSV edge cases."""

from __future__ import annotations

import zipfile

import pytest

import dlformats
from dlformats import CorruptFileError, DLFormatsWarning, LimitExceededError, Limits, Spots, testing

FIXTURES = testing.fixtures_dir()
needs_fixtures = pytest.mark.skipif(FIXTURES is None, reason="../shared/fixtures is absent")
FORMAT = "spots-csv"


def test_declared_and_import_light():
    testing.check_declared(FORMAT)
    testing.check_import_light("dlformats_spots")


@needs_fixtures
def test_deepcell_label_spots_csv(tmp_path):
    with zipfile.ZipFile(FIXTURES / "deepcell-label/spots.zip") as zf:
        data = zf.read("spots.csv")
    assert b"\r\n" in data  # the real file has CRLF line ends
    path = tmp_path / "spots.csv"
    path.write_bytes(data)
    testing.check_sniff(FORMAT, path)
    project = testing.check_read(FORMAT, path)
    spots = project.spots
    assert len(spots) == 26 and list(spots.columns) == ["cellID"]
    assert (spots.x[0], spots.y[0], spots.columns["cellID"][0]) == (86.6475, 45.35298, 0)
    assert spots.columns["cellID"][5] == 13 and all(isinstance(v, int) for v in spots.columns["cellID"])
    assert project.X is None and project.y is None and project.provenance["spots"].format == FORMAT

    # written back with a header and a trailing newline, read back equal: no spot lost
    out = tmp_path / "out.csv"
    dlformats.write(project, out)
    text = out.read_bytes()
    assert text.startswith(b"x,y,cellID\n") and text.endswith(b"\n") and text.count(b"\n") == 27
    assert dlformats.read(out).spots == spots


@needs_fixtures
def test_polaris_table_with_x_and_y_not_first():
    """A pandas export: unnamed index column first, x and y next, text and float columns, an empty column."""
    path = FIXTURES / "polaris/villus_gene_identities.csv"
    testing.check_sniff(FORMAT, path)
    spots = testing.check_read(FORMAT, path).spots
    assert len(spots) == 88499
    assert list(spots.columns) == ["", "z", "fov_id", "predicted_name", "predicted_id", "probability", "distance"]
    assert (spots.x[0], spots.y[0]) == (922.0, 1480.0)
    assert spots.columns[""][:3] == [0, 1, 2]
    assert spots.columns["predicted_name"][:2] == ["Cd8a", "Txndc5"]
    assert spots.columns["probability"][0] == pytest.approx(0.91832936)
    assert set(spots.columns["distance"]) == {None}


@needs_fixtures
def test_polaris_table_round_trips(tmp_path):
    src = FIXTURES / "polaris/villus_gene_identities.csv"
    project = dlformats.read(src)
    back = testing.check_roundtrip(FORMAT, project, tmp_path / "copy.csv")
    assert back.spots.columns["probability"][:3] == project.spots.columns["probability"][:3]


def test_roundtrip_of_a_made_project(tmp_path):
    testing.check_roundtrip(FORMAT, testing.make_project(), tmp_path / "spots.csv")


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_line_ends_and_last_line_without_newline(newline):
    data = newline.join([b"x,y,cellID", b"1.5,2.25,3", b"4,5e1,", b"-0.5,.5,7"])  # no final newline
    spots = dlformats.read(data, name="spots.csv").spots
    assert spots == Spots([1.5, 4.0, -0.5], [2.25, 50.0, 0.5], {"cellID": [3, None, 7]})


def test_columns_keep_their_kind():
    data = b"\xef\xbb\xbfX,Y,cell,score,gene\n1,2,5,0.5,Actb\n3,4,,,Gapdh\n5,6,6,2,\n"
    spots = dlformats.read(data, name="s.csv").spots
    assert spots.columns == {"cell": [5, None, 6], "score": [0.5, None, 2.0], "gene": ["Actb", "Gapdh", ""]}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"a,b,c\n1,2,3\n", "no 'x' column"),
        (b"1.0,2.0\n3.0,4.0\n", "no 'x' column"),
        (b"x,y,x\n1,2,3\n", "several 'x' columns"),
        (b"x,y,cellID\n1,2\n", "line 2 has 2 fields"),
        (b"x,y\n1,2\n\n3,nan\n", "line 4: y 'nan' is not a number"),
        (b"x,y\n1e400,2\n", "not finite"),
        (b"x,y\n1_0,2\n", "is not a number"),
        (b"x,y\n\xd9\xa1,2\n", "is not a number"),  # an Arabic-Indic digit
        (b"x,y\n\xff\xfe,2\n", "not UTF-8"),
        (b'x,y\n"1,2\n', "bad CSV"),
    ],
)
def test_broken_tables_are_typed_errors(tmp_path, data, reason):
    path = tmp_path / "spots.csv"
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match=reason) as info:
        dlformats.read(path, format=FORMAT)
    assert str(path) in str(info.value)


def test_a_table_without_x_and_y_says_what_is_needed(tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes(b"gene,count\nActb,3\n")
    with pytest.raises(CorruptFileError) as info:
        dlformats.read(path)
    assert "x and a y column" in str(info.value)


def test_size_limit(tmp_path):
    path = tmp_path / "spots.csv"
    path.write_bytes(b"x,y\n" + b"1,2\n" * 1000)
    with pytest.raises(LimitExceededError):
        dlformats.read(path, limits=Limits(csv_bytes=100))


def test_writer_escapes_formula_text_and_warns_without_spots(tmp_path):
    project = dlformats.Project(spots=Spots([1.0], [2.0], {"=cmd": ["@SUM(A1)"], "n": [-3]}))
    out = tmp_path / "out.csv"
    dlformats.write(project, out)
    assert out.read_text() == "x,y,'=cmd,n\n1,2,'@SUM(A1),-3\n"
    image_only = testing.make_project()
    image_only.spots = None
    with pytest.warns(DLFormatsWarning, match="no spots"):
        dlformats.write(image_only, tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text() == "x,y\n"
