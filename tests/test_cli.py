"""The newsrec command: build, info, dups, clean, eval, add, delete (stand-in embedder)."""
from __future__ import annotations

import json

import pytest

from web.cli import main
from tests.conftest import DEMO_CORPUS, SAMPLE_DIR, demo_records, write_jsonl


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_build_info_dups_add_delete(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "a.jsonl", demo_records(40))
    idx = str(tmp_path / "idx")
    code, out, err = run(capsys, "build", "--input", str(corpus), "--input", str(SAMPLE_DIR), "--index", idx,
                         "--backend", "hash", "--quiet")
    assert code == 0, err
    assert json.loads(out)["count"] == 41 and "docs/s" in err
    code, out, _ = run(capsys, "info", "--index", idx)
    assert code == 0 and json.loads(out)["count"] == 41
    code, out, _ = run(capsys, "dups", "--index", idx, "--format", "json", "--kind", "story")
    assert code == 0 and "groups" in json.loads(out)
    extra = write_jsonl(tmp_path / "b.jsonl", [{"id": "new-1", "title": "A new story", "body": "Something happened today in the city."}])
    code, out, _ = run(capsys, "add", "--index", idx, "--input", str(extra), "--backend", "hash", "--quiet")
    assert code == 0 and json.loads(out)["count"] == 42
    code, out, _ = run(capsys, "delete", "--index", idx, "--id", "new-1", "--backend", "hash")
    assert code == 0 and json.loads(out)["count"] == 41


def test_build_from_csv_and_a_folder(tmp_path, capsys):
    import csv

    rows = demo_records(5)
    with open(tmp_path / "a.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "title", "body", "published", "url", "source", "section"])
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in w.fieldnames})
    code, out, err = run(capsys, "build", "--input", str(tmp_path / "a.csv"), "--index", str(tmp_path / "i"), "--backend", "hash", "--quiet")
    assert code == 0, err
    assert json.loads(out)["count"] == 5
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "one.txt").write_text((SAMPLE_DIR / "sample-sheinbaum.txt").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "two.html").write_text("<html><body><article><h1>Two</h1><p>" + "Words in a page. " * 30 + "</p></article></body></html>")
    code, out, err = run(capsys, "build", "--input", str(folder), "--index", str(tmp_path / "j"), "--backend", "hash", "--quiet")
    assert code == 0, err
    code, out, _ = run(capsys, "info", "--index", str(tmp_path / "j"))
    assert json.loads(out)["count"] == 2


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "title": "ok", "body": "fine"}\n{"title": "no id"}\n')
    code, _, err = run(capsys, "build", "--input", str(bad), "--index", str(tmp_path / "i"), "--backend", "hash")
    assert code == 2 and "bad.jsonl:2" in err and "'id' is required" in err
    code, _, err = run(capsys, "build", "--input", str(tmp_path / "missing.jsonl"), "--index", str(tmp_path / "i"), "--backend", "hash")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "info", "--index", str(tmp_path / "nothing"))
    assert code == 2 and "newsrec build" in err
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"id": "a", "title": "Café", "body": "Zürich"}\n'.encode("latin-1"))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip")
    nul = tmp_path / "nul.csv"
    nul.write_text('id,title,body\na,ok,fine\nb,"a NUL\x00 inside",x\n', encoding="utf-8")
    for source, said in ((latin1, "latin1.jsonl is not UTF-8 text"), (broken, "not a whole gzip file"),
                         (nul, "nul.csv:3: 'title' contains a NUL byte")):
        code, _, err = run(capsys, "build", "--input", str(source), "--index", str(tmp_path / "i"), "--backend", "hash")
        assert code == 2 and said in err, err


def test_one_json_document_is_read_as_its_records_by_the_build_and_the_evals(tmp_path, capsys):
    """A JSON file holding a list of articles over many lines (as an export writes it) is read as its
    records, the same way by `build` and by the evaluations' reader; a file of another kind is refused."""
    from recommender.evaluation.datasets import read_rows

    records = demo_records(6)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(records, indent=2), encoding="utf-8")
    code, out, err = run(capsys, "build", "--input", str(export), "--index", str(tmp_path / "i"), "--backend", "hash",
                         "--quiet")
    assert code == 0 and json.loads(out)["count"] == 6, err
    assert read_rows(export, None) == records and read_rows(export, 2) == records[:2]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(records[0], indent=1), encoding="utf-8")
    assert read_rows(one, None) == records[:1]
    notes = tmp_path / "notes.txt"
    notes.write_text("A story.", encoding="utf-8")
    code, _, err = run(capsys, "build", "--input", str(notes), "--index", str(tmp_path / "j"), "--backend", "hash")
    assert code == 2 and "use .jsonl, .json or .csv" in err and "or a folder" in err, err


def test_clean_command(tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "s", "text": (SAMPLE_DIR / "sample-sheinbaum.txt").read_text(encoding="utf-8")},
        {"id": "h", "html": "<html><body><article><p>ALSO READ: <a href='https://x.example/a'>Other</a></p><p>" + "A sentence of the story. " * 20 + "</p></article></body></html>"},
    ])
    code, _, err = run(capsys, "clean", "--input", str(src), "--output", str(tmp_path / "out.jsonl"))
    assert code == 0, err
    rows = [json.loads(l) for l in open(tmp_path / "out.jsonl", encoding="utf-8")]
    assert [r["id"] for r in rows] == ["s", "h"]
    assert len(rows[0]["also_read"]) == 3 and rows[0]["removed"][0]["reason"]
    assert rows[1]["also_read"] == [{"title": "Other", "url": "https://x.example/a"}]
    assert set(rows[0]) == {"id", "title", "body", "lang", "lang_confidence", "also_read", "removed"}
    assert rows[0]["lang"] == "en" and rows[0]["lang_confidence"] > 0.9


def test_clean_of_a_file_it_cannot_read_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    binary = tmp_path / "page.jsonl"
    binary.write_bytes(bytes(range(128, 256)) * 8)
    out = tmp_path / "out.jsonl"
    for source, said in ((tmp_path / "missing.jsonl", "cannot read"), (binary, "not UTF-8 text")):
        code, _, err = run(capsys, "clean", "--input", str(source), "--output", str(out))
        assert code == 2 and said in err and "Traceback" not in err, err
        assert not out.exists() and not (tmp_path / "out.jsonl.tmp").exists()


def test_clean_takes_a_saved_page_as_it_is(tmp_path, capsys):
    page = tmp_path / "page.txt"
    page.write_text((SAMPLE_DIR / "sample-sheinbaum.txt").read_text(encoding="utf-8"), encoding="utf-8")
    code, out, err = run(capsys, "clean", "--input", str(page))
    assert code == 0, err
    row = json.loads(out)
    assert row["id"] == "page" and len(row["also_read"]) == 3 and row["body"]
    html = tmp_path / "story.html"
    html.write_text("<html><body><article><h1>Bus routes</h1><p>" + "The council added four bus routes. " * 12
                    + "</p></article></body></html>", encoding="utf-8")
    code, out, err = run(capsys, "clean", "--input", str(html))
    assert code == 0 and json.loads(out)["id"] == "story" and "four bus routes" in json.loads(out)["body"]


def test_demo_corpus_is_shipped():
    assert DEMO_CORPUS.exists() and len(demo_records(5000)) >= 2000


def test_eval_site_links_uses_the_sites_own_also_read_links(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEWSREC_MIN_SCORE", "-1")  # three articles: let every one through
    story = ("The city council voted on Tuesday to expand the bus network, adding four routes that will serve "
             "the northern suburbs, officials said in a statement.")
    records = [
        {"id": "a", "title": "Council expands bus network", "source": "daily", "body": story + "\n\nALSO READ: Rail fares to rise in spring"},
        {"id": "b", "title": "Rail fares to rise in spring", "source": "daily", "body": "Rail fares will rise in spring, the operator said, adding to commuters' costs on the bus network too."},
        {"id": "c", "title": "Football club signs striker", "source": "daily", "body": "The club signed a striker on Monday for an undisclosed fee, the manager said."},
    ]
    corpus = write_jsonl(tmp_path / "a.jsonl", records)
    idx = str(tmp_path / "idx")
    assert run(capsys, "build", "--input", str(corpus), "--index", idx, "--backend", "hash", "--quiet")[0] == 0
    code, out, err = run(capsys, "eval", "site-links", "--index", idx, "--backend", "hash")
    assert code == 0, err
    result = json.loads(out)
    assert result["articles_with_links"] == 1 and "daily" in result["sources"]
    assert result["recall_at_k"] == 1.0  # b, the page's own ALSO READ target, is in a's top 5
    code, _, err = run(capsys, "eval", "cleaning")
    assert code == 2 and "--data" in err



def test_an_eval_of_a_file_it_cannot_read_names_what_it_reads(tmp_path, capsys):
    """A labelled file of another shape, a missing one, one that is not JSON, or a corpus without its
    editors' links: one line saying what is read, exit 2, never a traceback."""
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"headline": "x", "score": 3}\n')
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("not json at all\n")
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": "a", "title": "t", "body": "b"}])
    for task, data, said in (("related", odd, "msvcode: doc_id, title, gold1"), ("same-story", odd, "msrp: text1, text2, label"),
                             ("related", tmp_path / "missing.csv", "no such file"), ("related", garbled, "not a CSV file or JSON lines"),
                             ("related", corpus, "--related"), ("cleaning", odd, "pages: clean_text"),
                             ("dups", corpus, "80 words or more")):
        code, out, err = run(capsys, "eval", task, "--data", str(data), "--backend", "hash")
        assert code == 2 and said in err and "Traceback" not in err and out == "", (task, data, err)

@pytest.mark.slow
def test_a_build_killed_mid_assembly_leaves_the_live_snapshot(tmp_path):
    """The driver killed (SIGKILL: no clean-up runs) while it links, groups and writes: the live snapshot is
    the one before, whole; the next build clears what the killed one left and publishes."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, index_summary

    index = tmp_path / "index"
    small = write_jsonl(tmp_path / "small.jsonl", demo_records(40, seed=1))
    big = write_jsonl(tmp_path / "big.jsonl", demo_records(3000, seed=2))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def build(path):
        return [sys.executable, "-m", "web.cli", "build", "--input", str(path), "--index", str(index), "--backend",
                "hash", "--quiet"]

    assert subprocess.run(build(small), cwd=ROOT, env=env, capture_output=True).returncode == 0
    live, before = (index / "CURRENT").read_text(), index_summary(index)
    driver = subprocess.Popen(build(big), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    for line in driver.stderr:  # the assembly starts once every article is cleaned and embedded
        if "finding duplicates" in line:
            break
    assert driver.poll() is None, "the build ended before its assembly could be interrupted"
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    driver.stderr.close()
    assert (index / "CURRENT").read_text() == live
    after = index_summary(index)
    assert all(after[part] == before[part] for part in ("ids", "dup_groups", "story_groups"))
    assert all((after["vectors"][i] == v).all() for i, v in before["vectors"].items())
    again = subprocess.run(build(big), cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert not [p for p in index.iterdir() if p.name.startswith(".tmp-")]
    assert len(index_summary(index)["ids"]) == 3000
