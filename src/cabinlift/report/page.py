"""The report as one HTML document that needs nothing outside itself.

Styles are inline, the figures are ``data:`` URIs or inline SVG, there is no script and no
font, image or style sheet to fetch: the page shows the same offline, from an e-mail
attachment or a CI artefact, as on the machine that wrote it. Table 1 and its companion tables
are metrics/table1.md rendered as it is (its bold, underline, † and significance marks kept);
the other tables are built from metrics/summary.json here.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from cabinlift.config import INITS, NO_REAL_DATA
from cabinlift.profiles import yaml_text
from cabinlift.report.compare import Comparison
from cabinlift.report.provenance import GitState, ProfileDiff, WallTime

#: The ``id`` of Table 1's first table (the mean MPJPE with its marks) on the page.
TABLE1_ID = "table1"
#: How many ``git status`` lines the page lists before it only counts the rest.
MAX_CHANGES_LISTED = 40

STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
  margin: 0; background: #f6f7f9; }
header { background: #1f3a5f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; opacity: .95; }
header code { background: rgba(255, 255, 255, .18); color: #fff; }
nav { background: #fff; border-bottom: 1px solid #dde1e6; padding: 8px 32px; position: sticky;
  top: 0; z-index: 1; }
nav a { margin-right: 16px; color: #1f3a5f; text-decoration: none; font-weight: 600; }
main { max-width: 1440px; margin: 0 auto; padding: 8px 20px 48px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 4px 14px 14px;
  margin: 18px 0; }
h2 { font-size: 20px; border-bottom: 2px solid #1f3a5f; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 22px; }
h4 { font-size: 14px; }
.scroll { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #dde1e6; padding: 2px 5px; white-space: nowrap; }
th { background: #eef1f5; text-align: left; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num, th.num { text-align: right; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; }
.clean { background: #d8f0dd; color: #14532d; }
.dirty { background: #fde2c8; color: #7c2d12; }
.muted, small { color: #5f6670; }
.pos { color: #b42318; }
.neg { color: #067647; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid #dde1e6; background: #fff; }
figcaption { font-size: 13px; color: #3d434a; }
details { margin: 6px 0; }
summary { cursor: pointer; font-weight: 600; }
code { font-size: 12.5px; background: #f0f2f5; padding: 0 3px; border-radius: 3px; }
pre { font-size: 12.5px; background: #f0f2f5; padding: 8px; overflow-x: auto; }
"""


@dataclass
class Figure:
    """One figure: its title, caption (HTML) and inline image (a ``data:`` URI) or SVG."""

    title: str
    caption: str
    uri: str = ""
    svg: str = ""


@dataclass
class ReportData:
    """Everything the page shows, read and collected by :mod:`cabinlift.report.stage`."""

    table1_md: str
    summary: dict[str, Any]
    names: dict[str, str]
    figures: list[Figure]
    git: GitState
    profile: ProfileDiff | None
    data_hashes: list[tuple[str, str]]
    versions: dict[str, str | None]
    setup: list[tuple[str, str]]
    wall_times: list[WallTime] | None
    comparison: Comparison | None = None
    convergence: Figure | None = None


def render_markdown(text: str, table_id: str = TABLE1_ID) -> str:
    """Markdown (CommonMark with tables and inline HTML such as ``<u>``) as HTML: a leading
    top-level heading left out (the page's section has the title), the other headings one
    level down, the first table given ``table_id``, every table in a horizontally scrolling
    box."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = md.parse(text)
    if tokens and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        tokens = tokens[3:]  # heading_open, inline, heading_close
    first = True
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
        if token.type == "table_open" and first:
            token.attrSet("id", table_id)
            first = False
    html = md.renderer.render(tokens, md.options, {})
    return html.replace("<table", '<div class="scroll"><table').replace(
        "</table>", "</table></div>")


def table(headers: list[str], rows: list[list[str]], numeric_from: int = 1,
          table_id: str | None = None) -> str:
    """An HTML table; ``headers`` are text, ``rows`` HTML; columns from ``numeric_from`` on
    are right-aligned."""
    def cls(j: int) -> str:
        return ' class="num"' if j >= numeric_from else ""

    head = "".join(f"<th{cls(j)}>{escape(h)}</th>" for j, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{cls(j)}>{c}</td>" for j, c in enumerate(row))
                   + "</tr>" for row in rows)
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return (f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def kv_table(rows: list[list[str]]) -> str:
    """A table of ``(what, value)`` rows (HTML), without a header."""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<div class="scroll"><table><tbody>{body}</tbody></table></div>'


def row_label(model: str, init: str, names: dict[str, str]) -> str:
    """A row of Table 1 as table1.md names it: ``GraFormer``, ``PT GraFormer``."""
    name = names.get(model, model)
    return f"PT {name}" if init == "pretrained" else name


def _mm(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def _signed(v: float) -> str:
    return f'<span class="{"pos" if v > 0 else "neg"}">{v:+.1f}</span>'


def setting_labels(summary: dict[str, Any]) -> dict[str, str]:
    """Setting name -> its label in Table 1 (summary.json's settings, and *No real data*)."""
    labels = {NO_REAL_DATA: "No real data"}
    labels.update({s: str(v.get("label", s)) for s, v in (summary.get("settings") or {}).items()})
    return labels


def comparison_section(comparison: Comparison, names: dict[str, str],
                       labels: dict[str, str]) -> str:
    """Our Table 1 beside the paper's: per cell ours, the paper's and the difference."""
    rows = []
    for m in comparison.models:
        for init in INITS:
            cells = [comparison.cells.get((m, init, s)) for s in comparison.settings]
            if not any(cells):
                continue
            row = [escape(row_label(m, init, names))]
            for c in cells:
                if c is None:
                    row.append("")
                    continue
                text = f"{_mm(c.ours)} <small>paper {_mm(c.paper)}</small>"
                row.append(text + (f"<br>{_signed(c.diff)}" if c.diff is not None else ""))
            rows.append(row)
    mean, n = comparison.mean_abs_diff()
    lead = (f"<p>Mean absolute difference over the {n} cells both tables have: "
            f"<strong>{_mm(mean)} mm</strong>. Per cell: ours, the paper's, and ours − paper "
            '(<span class="pos">red</span>: our error is higher, '
            '<span class="neg">green</span>: lower). The paper has no <em>No real data</em> '
            "column (—). Its numbers were measured on Drive&amp;Act; the demo data are not "
            "Drive&amp;Act, so on the demo the difference says nothing about the "
            "reproduction.</p>")
    return lead + table(["Model", *(labels.get(s, s) for s in comparison.settings)], rows)


def _columns(summary: dict[str, Any], setting: str) -> list[tuple[str, str]]:
    cells = summary.get("cells") or {}
    return [(m, i) for m in cells for i in INITS if setting in (cells[m].get(i) or {})]


def _settings(summary: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for inits in (summary.get("cells") or {}).values():
        for cells in inits.values():
            out += [s for s in cells if s not in out]
    order = [NO_REAL_DATA, *(summary.get("settings") or {})]
    return sorted(out, key=lambda s: order.index(s) if s in order else len(order))


def grid_tables(summary: dict[str, Any], key: str, what: str, names: dict[str, str],
                rename: dict[str, str] | None = None) -> str:
    """For every setting, a table of ``summary.cells[model][init][setting][key]`` (a mapping
    of row name -> mm): a row per entry, a column per model and init, the lowest of each row
    in bold. The setting with the most real data is open, the others folded."""
    labels = setting_labels(summary)
    settings = _settings(summary)
    out = []
    for s in settings:
        columns = _columns(summary, s)
        values = [summary["cells"][m][i][s].get(key) or {} for m, i in columns]
        names_in_order = list(dict.fromkeys(k for v in values for k in v))
        if not names_in_order:
            continue
        rows = []
        for name in names_in_order:
            row = [v.get(name) for v in values]
            best = min((x for x in row if x is not None), default=None)
            rows.append([escape((rename or {}).get(name, name))]
                        + [("<strong>{}</strong>" if x == best else "{}").format(_mm(x))
                           for x in row])
        header = [what, *(row_label(m, i, names) for m, i in columns)]
        open_ = " open" if s == settings[-1] else ""
        out.append(f"<details{open_}><summary>{escape(labels.get(s, s))}</summary>"
                   f"{table(header, rows)}</details>")
    return "\n".join(out)


def _figure(fig: Figure) -> str:
    body = fig.svg or f'<img src="{fig.uri}" alt="{escape(fig.title)}">'
    return (f"<figure>{body}<figcaption><strong>{escape(fig.title)}.</strong> {fig.caption}"
            "</figcaption></figure>")


def qualitative_caption(q: dict[str, Any], names: dict[str, str],
                        labels: dict[str, str]) -> str:
    """The facts of the qualitative panel (plots/qualitative.json) as a caption: which frame,
    why it was chosen, and each pose's error on that frame."""
    ref = q.get("reference") or {}
    ref_text = (f" (reference: {escape(row_label(ref['model'], ref['init'], names))}, "
                f"{escape(labels.get(ref['setting'], ref['setting']))})"
                if {"model", "init", "setting"} <= set(ref) else "")
    text = (f"{escape(names.get(q.get('model', ''), str(q.get('model'))))} on test frame "
            f"{escape(str(q.get('frame_id')))} of <code>{escape(str(q.get('file_id')))}</code> "
            f"(subject {escape(str(q.get('subject')))}, {escape(str(q.get('valid_joints')))} "
            f"valid joints), one row per init, one column per setting, run: "
            f"{escape(str(q.get('repetition')))}. The frame: {escape(str(q.get('how')))}"
            f"{ref_text}. Error of each pose on this frame [mm]:")
    errors = q.get("frame_mpjpe") or {}
    settings = list(dict.fromkeys(s for v in errors.values() for s in v))
    rows = [[escape(row_label(q.get("model", ""), init, names))]
            + [_mm(errors[init].get(s)) for s in settings] for init in errors]
    return text + table(["", *(labels.get(s, s) for s in settings)], rows)


def _git_section(git: GitState) -> list[list[str]]:
    commit = f"<code>{escape(git.commit)}</code>" if git.commit else escape(git.note)
    if git.dirty is None:
        tree = f'<span class="muted">{escape(git.note)}</span>'
    elif not git.dirty:
        tree = '<span class="badge clean">clean</span> (the commit holds exactly these files)'
    else:
        listed = git.changes[:MAX_CHANGES_LISTED]
        more = len(git.changes) - len(listed)
        lines = "\n".join(escape(c) for c in listed) + (f"\n… and {more} more" if more else "")
        tree = (f'<span class="badge dirty">dirty</span> {len(git.changes)} change(s) against '
                f"the commit (<code>git status --porcelain</code>; a report written by "
                "<code>dvc repro</code> before its results are committed lists them too)"
                f"<details><summary>changes</summary><pre>{lines}</pre></details>")
    return [["Commit", commit], ["Working tree", tree]]


def _profile_section(profile: ProfileDiff | None) -> str:
    if profile is None:
        return "<p>No profiles (profiles/*.yaml) to compare params.yaml with.</p>"
    others = ", ".join(f"{escape(n)}: {c}" for n, c in sorted(profile.counts.items()))
    lead = (f"<p>Closest profile: <strong>{escape(profile.name)}</strong> "
            f"({escape(profile.description)}); differing keys per profile: {others}.</p>")
    if not profile.changes:
        return lead + f"<p>params.yaml holds every value of profile {escape(profile.name)}.</p>"
    rows = [[f"<code>{escape(k)}</code>", escape(yaml_text(ours)), escape(yaml_text(theirs))]
            for k, ours, theirs in profile.changes]
    return lead + table(["Key", "params.yaml", f"profile {profile.name}"], rows,
                        numeric_from=99)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _wall_section(times: list[WallTime] | None, names: dict[str, str]) -> str:
    if not times:
        return ("<p>Wall times: not recorded (the timing logs, logs/wall_times.csv and "
                "logs/pretrain/, are written by the pipeline's stages on the machine that ran "
                "them and are not versioned).</p>")
    stages, models = ["pretrain", "finetune_scratch", "finetune_pretrained"], list(names)

    def order(t: WallTime) -> tuple[int, int, str]:
        return (stages.index(t.stage) if t.stage in stages else len(stages),
                models.index(t.model) if t.model in models else len(models), t.model)

    rows = [[escape(t.stage), escape(names.get(t.model, t.model)), str(t.runs),
             str(t.reused), f"{t.seconds:.1f}", _duration(t.seconds)]
            for t in sorted(times, key=order)]
    total = sum(t.seconds for t in times)
    rows.append(["<strong>total</strong>", "", str(sum(t.runs for t in times)),
                 str(sum(t.reused for t in times)), f"<strong>{total:.1f}</strong>",
                 f"<strong>{_duration(total)}</strong>"])
    return ("<p>Wall times of the training runs, summed per stage and model (from the timing "
            "logs of the last runs of the stages on the machine that wrote this page).</p>"
            + table(["Stage", "Model", "Runs", "Reused", "Seconds", "h:mm:ss"], rows,
                    numeric_from=2))


def provenance_section(data: ReportData) -> str:
    """Commit and tree, params against the closest profile, data hashes, versions, device and
    threads, wall times."""
    parts = [kv_table(_git_section(data.git)),
             "<h3>Params against the closest profile</h3>", _profile_section(data.profile),
             "<h3>Data</h3>"]
    if data.data_hashes:
        parts.append("<p>MD5 that DVC recorded in dvc.lock for the data the pipeline read "
                     "(the inputs of the normalize stage) and for the input manifests "
                     "(<code>data/inputs/*.json</code>).</p>")
        parts.append(table(["Path", "MD5"], [[f"<code>{escape(p)}</code>",
                                              f"<code>{escape(h)}</code>"]
                                             for p, h in data.data_hashes], numeric_from=99))
    else:
        parts.append("<p>No dvc.lock entry for the data (the pipeline has not been run with "
                     "DVC here).</p>")
    parts.append("<h3>Software</h3>")
    parts.append(table(["Package", "Version"], [
        [escape(n), escape(v) if v else '<span class="muted">not installed</span>']
        for n, v in data.versions.items()], numeric_from=99))
    parts.append("<h3>Device and threads</h3>")
    parts.append(kv_table([[f"<code>{escape(k)}</code>", escape(v)] for k, v in data.setup]))
    parts.append("<h3>Wall times</h3>")
    parts.append(_wall_section(data.wall_times, data.names))
    return "\n".join(parts)


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def render(data: ReportData) -> str:
    """The whole page."""
    labels = setting_labels(data.summary)
    commit = data.git.commit[:12] if data.git.commit else data.git.note
    state = ("" if data.git.dirty is None else
             ' <span class="badge dirty">dirty tree</span>' if data.git.dirty else
             ' <span class="badge clean">clean tree</span>')
    profile = (f", closest profile <strong>{escape(data.profile.name)}</strong> "
               f"({len(data.profile.changes)} keys differ)" if data.profile else "")
    test = data.summary.get("test_set") or {}
    sections = [
        ("table-1", "Table 1", render_markdown(data.table1_md)),
    ]
    if data.comparison is not None:
        sections.append(("paper", "Beside the paper's Table 1",
                         comparison_section(data.comparison, data.names, labels)))
    sections.append(("figures", "Figures", "\n".join(_figure(f) for f in data.figures)))
    sections.append(("per-joint", "Per-joint error [mm]",
                     f"<p>{escape(str((data.summary.get('definitions') or {}).get('per_joint', '')))}"
                     "; mean over the runs of each cell; the lowest of each joint in bold.</p>"
                     + grid_tables(data.summary, "per_joint", "Joint", data.names)))
    sections.append(("per-activity", "Per-activity error [mm]",
                     "<p>MPJPE over the test frames of each activity, mean over the runs of "
                     "each cell; the lowest of each activity in bold. The activity-macro "
                     "average (" + escape(str((data.summary.get("definitions") or {}).get(
                         "activity_macro", ""))) + ") is in summary.json's tables.</p>"
                     + grid_tables(data.summary, "per_activity", "Activity", data.names,
                                   {"<unknown>": "(no activity label)"})))
    if data.convergence is not None:
        sections.append(("convergence", "Convergence", _figure(data.convergence)
                         + "<p>Per fine-tuning cell, the runs stopped early and those still "
                         'improving at their last check: Table 1\'s <a href="#table1">'
                         "Convergence</a> tables.</p>"))
    sections.append(("provenance", "Provenance", provenance_section(data)))
    nav = "".join(f'<a href="#{i}">{escape(t)}</a>' for i, t, _ in sections)
    body = "\n".join(_section(i, t, b) for i, t, b in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            "<title>cabinlift report</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<header><h1>cabinlift: Table 1 and how it was made</h1>"
            f"<p>Commit <code>{escape(commit)}</code>{state}{profile}. Test set: "
            f"{escape(str(test.get('frames', '?')))} frames of subjects "
            f"{escape(', '.join(str(s) for s in test.get('subjects') or []))}.</p></header>\n"
            f"<nav>{nav}</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n")
