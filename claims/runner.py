"""Run claims, save every result at once and atomically, report, and redraw figures from saved rows.

Layout of an output folder (default ``results/<scale>/``)::

    claims/<id>.json     one record per finished claim (written last: its presence means "finished")
    rows/<id>.jsonl      long-format rows of that claim (claim, method, seed, step, ..., config, code_version)
    figures/<id>.png|pdf the claim's figure, drawn from the saved rows
    work/<id>/           scratch space a claim may use (ctx.out_dir)
    report.md            Markdown report of the selected claims

Every file is written to a temporary file in the same folder and moved into place with ``os.replace``,
so an interrupted run leaves either the complete file or none; ``resume=True`` skips claims whose record
exists for the same scale (claims that raised are run again).  A claim that raises becomes an
"inconclusive" entry with the traceback summary in ``detail`` and the run goes on; KeyboardInterrupt
stops the run after saving nothing partial.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

from records import (atomic_write_text, code_version, from_jsonable, git_commit, git_dirty, lock_folder,
                     package_version, to_jsonable, writable_file, writable_folder)
from records import dumps as _dumps
from records import read_jsonl as load_rows  # rows of one claim, "nan"/"inf" decoded; [] if absent
from records.options import DeviceError, check_device
from records.provenance import REPO_ROOT

from .registry import (SCALES, Claim, Context, NoMatchError, Outcome, Registry, _as_claim, _split_patterns,
                       default_registry, matches)
from . import verdicts as V
from .runtime import single_thread

__all__ = ["run", "execute", "redraw", "RunSummary", "DeviceError", "environment", "load_record", "load_records",
           "load_rows", "load_outcome", "save_outcome", "json_document", "markdown_report", "format_table", "REPORT_KEYS"]

#: Default of the ``stream`` arguments: ``sys.stdout`` looked up at call time (a default bound at import time
#: goes stale when the caller replaces ``sys.stdout``).
STDOUT = object()
REPORT_KEYS = ("id", "paper", "kind", "statement", "verdict", "margin", "measured", "predicted", "detail", "figure")


def _version(mod: str) -> str | None:
    try:
        return __import__(mod).__version__
    except Exception:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(scale: str, device: str) -> dict:
    env = {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "device_name": _cpu_name(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "code_version": code_version(),
        "sublab": package_version(),
        "scale": scale,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.startswith("cuda"):
        try:
            import torch
            env["device_name"] = torch.cuda.get_device_name(torch.device(device))
            env["cuda"] = torch.version.cuda
        except Exception:
            pass
    return env


# ---------------------------------------------------------------------------------------------- execution

def _resolve(target, registry: Registry | None = None) -> Claim:
    if isinstance(target, str):
        return (registry or default_registry()).get(target)
    return _as_claim(target)


def execute(target, *, scale: str = "quick", device: str = "cpu", out_dir: str | Path | None = None,
            log: Callable[[str], None] | None = None, registry: Registry | None = None,
            seed_family: int = 0) -> Outcome:
    """Run one claim (decorated function, Claim or id) and return its checked Outcome; writes nothing."""
    c = _resolve(target, registry)
    return _call(c, Context(c.id, scale=scale, device=device, out_dir=out_dir, log=log, seed_family=seed_family))


def _call(c: Claim, ctx: Context) -> Outcome:
    """Run the claim under the runner's run-time policy: one torch thread while on the CPU (``single_thread``)."""
    with single_thread(ctx.device):
        out = c.fn(ctx)
    if not isinstance(out, Outcome):
        raise TypeError(f"claim {c.id!r} returned {type(out).__name__}, expected Outcome")
    return out


def _error_summary(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    if tb:
        fr = tb[-1]
        fname = fr.filename
        try:
            fname = os.path.relpath(fname, REPO_ROOT) if fname.startswith(str(REPO_ROOT)) else fname
        except ValueError:
            pass
        where = f"at {fname}:{fr.lineno} in {fr.name}"
    return where


def _detail(verdict: V.Verdict, detail: str) -> str:
    return verdict.reason if not detail else f"{verdict.reason}. {detail}"


def _paths(out: Path, claim_id: str) -> dict[str, Path]:
    return {"record": out / "claims" / f"{claim_id}.json", "rows": out / "rows" / f"{claim_id}.jsonl",
            "figure": out / "figures" / claim_id, "work": out / "work" / claim_id}


def load_record(path: str | Path) -> dict:
    return from_jsonable(json.loads(Path(path).read_text(encoding="utf-8")))


def load_records(out: str | Path) -> dict[str, dict]:
    """Every finished record in an output folder, by claim id (temporary files ignored)."""
    folder = Path(out) / "claims"
    recs = {}
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            if p.name.startswith("."):
                continue
            r = load_record(p)
            recs[r["id"]] = r
    return recs


def default_out(scale: str, seed_family: int = 0) -> Path:
    """results/<scale>/ for the canonical seed family 0, results/<scale>-family<N>/ for the others (never mixed)."""
    return Path("results") / (scale if seed_family == 0 else f"{scale}-family{seed_family}")


def _finished(out: Path, c: Claim, scale: str, seed_family: int) -> dict | None:
    p = _paths(out, c.id)
    if not p["record"].exists() or not p["rows"].exists():
        return None
    try:
        rec = load_record(p["record"])
    except (OSError, ValueError):
        return None
    if rec.get("error") or rec.get("scale") != scale or rec.get("seed_family", 0) != seed_family:
        return None
    return rec


def _draw(c: Claim, rows: list[dict], out: Path, fig_dir: Path | None = None) -> str | None:
    """Draw ``c``'s figure from rows in the shared style; save PNG+PDF; return path relative to ``out``."""
    if c.draw is None:
        return None
    from analysis import plotting
    fig_dir = fig_dir or out / "figures"
    with plotting.style():
        fig = c.draw(rows)
        if fig is None:
            return None
        paths = plotting.save_figure(fig, fig_dir / c.id)
        plotting.close(fig)
    png = next(p for p in paths if p.suffix == ".png")
    try:
        return os.path.relpath(png, out).replace(os.sep, "/")
    except ValueError:
        return str(png)


@dataclass
class RunSummary:
    out: Path
    records: list[dict]
    environment: dict
    report: Path | None = None
    json_path: Path | None = None
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    needs_gpu: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    import_errors: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    def counts(self) -> dict[str, int]:
        c = {v: 0 for v in V.VERDICTS}
        for r in self.records:
            c[r["verdict"]] = c.get(r["verdict"], 0) + 1
        return c


class _Progress:
    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.mid_line = False

    def write(self, text: str, end: str = "\n") -> None:
        if self.stream is None:
            return
        self.stream.write(text + end)
        self.stream.flush()
        self.mid_line = end != "\n"

    def log(self, msg: str) -> None:
        if self.mid_line:
            self.write("")
        self.write(f"    {msg}")


def run(claims: Registry | Iterable | None = None, *, scale: str = "quick", only=None,
        out: str | Path | None = None, device: str = "cpu", resume: bool = False,
        json_path: str | Path | None = None, figures: bool = True,
        stream: TextIO | None = STDOUT, seed_family: int = 0) -> RunSummary:
    """Run the selected claims; see the module docstring for what is written where.

    ``claims``: a Registry, an iterable of claims (decorated functions), or None for the package registry.
    ``report.md``, ``environment.json`` and the ``json_path`` document cover every claim finished in ``out`` at
    this scale (this run's and earlier ones'), so a partial run (``only``) never hides the others; the returned
    summary lists this run's claims. The folder is locked for the run (``records.lock_folder``); ``out`` and
    ``json_path`` are checked writable before any claim runs. ``seed_family`` reseeds every draw
    (``Context.seed_family``); a folder holds one family (``--resume`` never takes another family's record).
    At full scale on the CPU, claims marked ``gpu_at_full`` are left out (listed in ``summary.needs_gpu``) unless
    ``only`` selects.
    Raises NoMatchError (a pattern of ``only`` matches no claim), DeviceError, ValueError (bad scale, an output
    that cannot be written), records.FolderBusy (another run holds ``out``), KeyboardInterrupt.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    stream = sys.stdout if stream is STDOUT else stream
    device = check_device(device)
    registry = claims if isinstance(claims, Registry) else (
        default_registry() if claims is None else Registry(claims))
    selected = select_each(registry, only)
    needs_gpu = [c.id for c in selected if scale == "full" and device == "cpu" and c.gpu_at_full and only is None]
    selected = [c for c in selected if c.id not in needs_gpu]
    if not isinstance(seed_family, int) or isinstance(seed_family, bool) or seed_family < 0:
        raise ValueError(f"--seed-family={seed_family!r} is invalid; allowed: an integer >= 0")
    out = Path(out) if out is not None else default_out(scale, seed_family)
    writable_folder(out, "--out")
    if json_path is not None:
        writable_file(json_path, "--json")
    with lock_folder(out, "sublab verify"):
        env = environment(scale, device)
        env["results"] = str(out)  # figure paths in records are relative to this folder
        env["seed_family"] = seed_family
        prog = _Progress(stream)
        summary = RunSummary(out=out, records=[], environment=env, import_errors=dict(registry.import_errors),
                             needs_gpu=needs_gpu)
        for mod, tb in registry.import_errors.items():
            last = tb.strip().splitlines()[-1] if tb.strip() else ""
            prog.write(f"warning: could not import {mod}: {last}")
        prog.write(f"sublab verify: {len(selected)} claim(s), scale={scale}, seed family {seed_family}, "
                   f"device={device} -> {out}")
        if needs_gpu:
            prog.write(f"not run: {len(needs_gpu)} claim(s) whose full scale needs a GPU (--device cuda, or name them "
                       f"with --only to run them here): {', '.join(needs_gpu)}")
        t_run = time.perf_counter()
        width = max([len(c.id) for c in selected] + [10])
        nd = len(str(len(selected)))
        for i, c in enumerate(selected, 1):
            head = f"[{i:>{nd}}/{len(selected)}] {c.id:<{width}}"
            rec = _finished(out, c, scale, seed_family) if resume else None
            if rec is not None:
                if figures and c.draw is not None and not (rec.get("figure") and (out / rec["figure"]).exists()):
                    rec = _refresh_figure(c, rec, out)
                summary.records.append(rec)
                summary.skipped.append(c.id)
                prog.write(f"{head}  {rec['verdict']:<12}  (finished earlier, skipped)")
                continue
            prog.write(head + "  ...", end="")
            record = _run_claim(c, out, scale, device, env["code_version"], figures, prog.log, seed_family)
            summary.records.append(record)
            summary.ran.append(c.id)
            if record["error"]:
                summary.errors.append(c.id)
            tag = record["verdict"] + (" (error)" if record["error"] else "")
            if not prog.mid_line:
                prog.write(head + "  ...", end="")
            prog.write(f" {tag:<20} {record['elapsed_s']:7.1f} s   (total {time.perf_counter() - t_run:.0f} s)")
        summary.elapsed_s = time.perf_counter() - t_run
        _write_reports(summary, registry, scale, json_path)
        if stream is not None:
            _print_summary(prog, summary)
        return summary


def _run_claim(c: Claim, out: Path, scale: str, device: str, version: str, figures: bool,
               log: Callable[[str], None], seed_family: int = 0) -> dict:
    """Run one claim and save it with :func:`save_outcome`; a claim that raises is saved as an error record (its
    verdict inconclusive, its traceback kept), not raised."""
    config = {"scale": scale, "device": device, "seed_family": seed_family}
    t0 = time.perf_counter()
    tb_text = None
    try:
        ctx = Context(c.id, scale=scale, device=device, out_dir=_paths(out, c.id)["work"], log=log,
                      seed_family=seed_family)
        outcome = _call(c, ctx)
        owned = sorted(set(config) & set(ctx.config))
        if owned:
            raise ValueError(f"claim {c.id!r} sets ctx.config keys the runner owns: {owned}; rename them")
        config.update(ctx.config)
    except Exception as exc:  # reported, not fatal
        outcome = Outcome({}, {}, V.error(exc, _error_summary(exc)))
        tb_text = traceback.format_exc()
    return save_outcome(c, outcome, out, config=config, version=version, figures=figures,
                        elapsed_s=time.perf_counter() - t0, traceback_text=tb_text)


def save_outcome(c: Claim, outcome: Outcome, out: str | Path, *, config: dict, version: str | None = None,
                 figures: bool = True, elapsed_s: float = 0.0, traceback_text: str | None = None) -> dict:
    """Save a claim's rows, its figure and its record under ``out``, in that order (the record's presence marks
    the claim finished); ``config`` holds at least scale, device and seed_family. Returns the record as saved
    (non-finite values decoded)."""
    out, p = Path(out), _paths(Path(out), c.id)
    version = version or code_version()
    verdict = outcome.verdict
    detail = _detail(verdict, outcome.detail)
    lines = [_dumps(_claim_row(c.id, r, config, version)) for r in outcome.rows]
    atomic_write_text(p["rows"], "".join(line + "\n" for line in lines))
    figure = None
    if figures and c.draw is not None and traceback_text is None:
        try:
            figure = _draw(c, [from_jsonable(json.loads(line)) for line in lines], out)
        except Exception as exc:
            detail += f" [figure failed: {type(exc).__name__}: {exc} {_error_summary(exc)}]"
    record = {
        "id": c.id, "paper": c.paper, "kind": c.kind, "statement": c.statement, "source": c.source,
        "verdict": str(verdict), "margin": V.margin(verdict), "measured": outcome.measured,
        "predicted": outcome.predicted, "detail": detail, "seed_family": config["seed_family"],
        "figure": figure, "reason": verdict.reason, "rule": verdict.rule,
        "rule_inputs": verdict.as_dict()["inputs"], "error": traceback_text is not None,
        "traceback": traceback_text, "elapsed_s": round(elapsed_s, 3), "scale": config["scale"],
        "device": config["device"], "config": config, "code_version": version,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": os.path.relpath(p["rows"], out).replace(os.sep, "/"), "n_rows": len(lines),
    }
    atomic_write_text(p["record"], _dumps(record, indent=1) + "\n")
    return from_jsonable(json.loads(_dumps(record)))


def load_outcome(out: str | Path, claim_id: str, *, scale: str = "quick",
                 seed_family: int = 0) -> tuple[Outcome, dict] | None:
    """The Outcome saved under ``out`` for ``claim_id`` at ``scale`` and ``seed_family`` (rows as saved, verdict
    with its reason and rule; its inputs are the record's summary, so take the margin from the record) and the
    record, or None when no such finished, error-free record exists."""
    p = _paths(Path(out), claim_id)
    if not p["record"].exists() or not p["rows"].exists():
        return None
    rec = load_record(p["record"])
    if rec.get("error") or rec.get("scale") != scale or rec.get("seed_family", 0) != seed_family:
        return None
    verdict = V.Verdict(rec["verdict"], rec["reason"], rec["rule"], rec.get("rule_inputs"))
    detail = rec["detail"].removeprefix(rec["reason"]).removeprefix(". ")  # undoes _detail
    return Outcome(rec["measured"], rec["predicted"], verdict, detail, load_rows(p["rows"])), rec


def _claim_row(claim_id: str, row: dict, config: dict, version: str) -> dict:
    """A claim's row as saved: claim, method, seed and step first, the run configuration (with the row's own
    ``config`` keys on top) and the code version last."""
    saved = {"claim": claim_id, "method": None, "seed": None, "step": None}
    saved.update({k: v for k, v in row.items() if k not in ("claim", "config", "code_version")})
    saved["config"] = {**config, **(row.get("config") or {})}
    saved["code_version"] = version
    return saved


def _write_reports(summary: RunSummary, registry: Registry, scale: str, json_path) -> None:
    """``report.md``, ``environment.json`` and the ``json_path`` document, from every record finished in the folder."""
    out, env = summary.out, summary.environment
    env["elapsed_s"] = round(summary.elapsed_s, 3)
    if summary.import_errors:
        env["import_errors"] = {m: (tb.strip().splitlines() or [""])[-1] for m, tb in summary.import_errors.items()}
    folder = _folder_records(out, registry, scale)
    summary.report = atomic_write_text(out / "report.md", markdown_report(folder, env, {c.id: c for c in registry}))
    atomic_write_text(out / "environment.json", _dumps(env, indent=1) + "\n")
    if json_path is not None:
        summary.json_path = atomic_write_text(Path(json_path), _dumps(json_document(folder, env), indent=1) + "\n")


def _print_summary(prog: _Progress, summary: RunSummary) -> None:
    """The closing table and counts of this run's claims."""
    counts = summary.counts()
    prog.write("")
    prog.write(format_table(summary.records))
    prog.write("")
    prog.write(f"done in {summary.elapsed_s:.1f} s: " + ", ".join(f"{n} {v}" for v, n in counts.items())
               + (f" ({len(summary.errors)} raised)" if summary.errors else "")
               + (f", {len(summary.skipped)} resumed" if summary.skipped else ""))
    if summary.needs_gpu:
        prog.write(f"not run (full scale needs a GPU): {', '.join(summary.needs_gpu)}")
    prog.write(f"report: {summary.report}" + (f"   json: {summary.json_path}" if summary.json_path else ""))


def select_each(registry: Registry, only) -> list[Claim]:
    """``registry.select(only)``, but every comma-separated pattern must match a claim (NoMatchError names the
    first that does not)."""
    ids = registry.ids()
    for pattern in _split_patterns(only):
        if not any(matches(i, pattern) for i in ids):
            raise NoMatchError([pattern], ids)
    return registry.select(only)


def _folder_records(out: Path, registry: Registry, scale: str) -> list[dict]:
    """Every record finished in ``out`` at ``scale``: registered claims in registry order, then the others."""
    saved = {cid: r for cid, r in load_records(out).items() if r.get("scale") == scale}
    order = [c.id for c in registry if c.id in saved]
    return [saved[cid] for cid in order + sorted(set(saved) - set(order))]


def _refresh_figure(c: Claim, rec: dict, out: Path) -> dict:
    try:
        fig = _draw(c, load_rows(out / rec.get("rows", f"rows/{c.id}.jsonl")), out)
    except Exception:
        return rec
    if fig != rec.get("figure"):
        rec = dict(rec, figure=fig)
        atomic_write_text(out / "claims" / f"{c.id}.json", _dumps(rec, indent=1) + "\n")
    return rec


# ---------------------------------------------------------------------------------------------- reports

def json_document(records: list[dict], env: dict) -> dict:
    """The document of DESIGN.md: {"claims": [{id, paper, kind, statement, verdict, margin, measured, predicted,
    detail, figure}], "environment": {...}}."""
    return {"claims": [{k: r.get(k) for k in REPORT_KEYS} for r in records], "environment": env}


def _short_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return V._fmt(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_short_value(e) for e in v[:3])
        return f"[{inner}{', ...' if len(v) > 3 else ''}]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_short_value(e)}" for k, e in list(v.items())[:2]) + (", ...}" if len(v) > 2 else "}")
    return str(v)


def short(d: dict, width: int = 40) -> str:
    """``k=v, k2=v2`` with 4 significant digits, cut to ``width`` characters."""
    s = ", ".join(f"{k}={_short_value(v)}" for k, v in (d or {}).items())
    return s if len(s) <= width else s[: width - 3] + "..."


def margin_text(r: dict) -> str:
    """A record's margin as text: '0.12 of the bound', or '' for an undecided verdict."""
    m = r.get("margin")
    return f"{V._fmt(m['value'])} {m['unit']}" if m else ""


def format_table(records: list[dict], width: int = 38) -> str:
    """Plain-text table: id, kind, verdict, margin, measured, predicted (short)."""
    heads = ("id", "kind", "verdict", "margin", "measured", "predicted")
    rows = [(r["id"], r.get("kind") or "", r["verdict"] + ("*" if r.get("error") else ""), margin_text(r),
             short(r.get("measured"), width), short(r.get("predicted"), width)) for r in records]
    w = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(heads)]
    line = lambda cells: "  ".join(c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()  # noqa: E731
    out = [line(heads), line(["-" * x for x in w])] + [line(r) for r in rows]
    if any(r.get("error") for r in records):
        out.append("* the claim raised; see detail")
    return "\n".join(out)


def _md(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_block(d: dict) -> str:
    if not d:
        return "_(none)_"
    return "\n".join(f"- `{k}`: {_md(_short_value(v) if not isinstance(v, (list, dict)) else json.dumps(to_jsonable(v)))}"
                     for k, v in d.items())


def markdown_report(records: list[dict], env: dict, claims: dict[str, Claim] | None = None) -> str:
    """``report.md``: environment, summary counts, the claims table, then one section per claim."""
    claims = claims or {}
    counts: dict[str, int] = {v: 0 for v in V.VERDICTS}
    for r in records:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    lines = [f"# sublab verify report ({env.get('scale')} scale)", ""]
    lines.append(f"{len(records)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    lines.append("")
    lines.append("Environment: " + ", ".join(f"{k}={env.get(k)}" for k in (
        "date", "code_version", "device", "device_name", "python", "torch", "numpy", "platform", "cpu_count")))
    if env.get("import_errors"):
        lines += ["", "**Modules that failed to import** (their claims are missing):", ""]
        lines += [f"- `{m}`: {_md(e)}" for m, e in env["import_errors"].items()]
    lines += ["", "| id | paper | kind | verdict | margin | measured | predicted | time (s) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| [`{r['id']}`](#{_anchor(r['id'])}) | {_md(r['paper'])} | {r.get('kind') or ''} | "
                     f"**{r['verdict']}** | {_md(margin_text(r))} | {_md(short(r.get('measured'), 60))} | "
                     f"{_md(short(r.get('predicted'), 60))} | {r.get('elapsed_s', '')} |")
    for r in records:
        margin = f" (margin {margin_text(r)})" if r.get("margin") else ""
        lines += ["", f"## {r['id']}", "", f"*{r.get('kind') or 'paper'}* claim, **{r['verdict']}**{margin}: "
                  f"{_md(r['detail'])}", "",
                  f"*Statement* ({_md(r.get('source', ''))}): {_md(r['statement'])}", ""]
        c = claims.get(r["id"])
        if c is not None and c.doc:
            lines += ["<details><summary>claim docstring</summary>", "", "```text", c.doc, "```", "", "</details>", ""]
        lines += ["Measured:", "", _md_block(r.get("measured")), "", "Predicted:", "", _md_block(r.get("predicted")), ""]
        lines.append(f"Rule `{r.get('rule')}`; {r.get('n_rows', 0)} rows in `{r.get('rows')}`; "
                     f"{r.get('elapsed_s')} s; code {r.get('code_version')}.")
        if r.get("figure"):
            lines += ["", f"![{r['id']}]({r['figure']})"]
        if r.get("traceback"):
            lines += ["", "```text", r["traceback"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


README_START, README_END = "<!-- claims-table:start -->", "<!-- claims-table:end -->"


def readme_table(records: list[dict], env: dict | None = None) -> str:
    """The README's claims table (id, paper, kind, verdict, margin, statement), generated from saved records; every
    number in full is on the claim's page of the documentation site (``make docs``) and in report.md."""
    head = ""
    if env:
        head = (f"Generated by `sublab figures --readme README.md` from a `sublab verify --scale {env.get('scale')}` "
                f"run ({env.get('date', '')[:10]}, code {env.get('code_version')}, {env.get('device')}).\n\n")
    lines = ["| id | paper | kind | verdict | margin | statement |", "|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: r["id"]):
        lines.append(f"| `{r['id']}` | {_md(r['paper'])} | {r.get('kind') or ''} | **{r['verdict']}** | "
                     f"{_md(margin_text(r))} | {_md(r.get('statement', ''))} |")
    return head + "\n".join(lines)


def update_readme(path: str | Path, table: str) -> Path:
    """Replace the text between the claims-table markers of ``path`` (atomically)."""
    text = Path(path).read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path}: markers {README_START} ... {README_END} not found")
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    return atomic_write_text(path, f"{before}{README_START}\n{table}\n{README_END}{after}")


def _anchor(claim_id: str) -> str:
    return "".join(ch for ch in claim_id.lower() if ch.isalnum() or ch in "-_ ").replace(" ", "-")


# ---------------------------------------------------------------------------------------------- figures

def redraw(results: str | Path, claims: Registry | Iterable | None = None, *, out: str | Path | None = None,
           only=None, gallery: str | Path | None = None, stream: TextIO | None = STDOUT) -> dict[str, str]:
    """Redraw every figure of a results folder from its saved rows (no experiment is rerun).

    Figures go to ``out`` (default ``<results>/figures``); when that is the results' own folder the
    records' ``figure`` field is updated.  ``gallery``: also copy the PNG of each gallery claim there.
    ``stream``: where progress lines go (``STDOUT``: ``sys.stdout`` at call time; None: nowhere).
    Returns {claim id: png path}.
    Raises FileNotFoundError (no saved records), NoMatchError (a pattern of ``only`` matches no saved claim),
    ValueError (the figure folder is not writable).
    """
    stream = sys.stdout if stream is STDOUT else stream
    results = Path(results)
    registry = claims if isinstance(claims, Registry) else (
        default_registry() if claims is None else Registry(claims))
    records = load_records(results)
    if not records:
        raise FileNotFoundError(f"no finished claims under {results}/claims (run `sublab verify` first)")
    if only:
        pats = _split_patterns(only)
        for p in pats:
            if not any(matches(k, p) for k in records):
                raise NoMatchError([p], list(records))
        records = {k: v for k, v in records.items() if any(matches(k, p) for p in pats)}
    fig_dir = writable_folder(Path(out) if out is not None else results / "figures", "--out")
    own = fig_dir.resolve() == (results / "figures").resolve()
    drawn: dict[str, str] = {}
    for cid, rec in records.items():
        if cid not in registry:
            _say(stream, f"{cid}: not a registered claim any more; skipped")
            continue
        c = registry.get(cid)
        if c.draw is None or rec.get("error"):
            continue
        rows = load_rows(results / rec.get("rows", f"rows/{cid}.jsonl"))
        try:
            rel = _draw(c, rows, results, fig_dir)
        except Exception as exc:
            _say(stream, f"{cid}: figure failed: {type(exc).__name__}: {exc} {_error_summary(exc)}")
            continue
        if rel is None:
            continue
        png = (results / rel) if not Path(rel).is_absolute() else Path(rel)
        drawn[cid] = str(png)
        if own and rec.get("figure") != rel:
            rec = dict(rec, figure=rel)
            atomic_write_text(results / "claims" / f"{cid}.json", _dumps(rec, indent=1) + "\n")
        if gallery is not None and c.gallery:
            g = Path(gallery)
            g.mkdir(parents=True, exist_ok=True)
            tmp = g / f".{cid}.png.tmp"
            shutil.copyfile(png, tmp)
            os.replace(tmp, g / f"{cid}.png")
        _say(stream, f"{cid}: {png}")
    return drawn


def _say(stream, msg):
    if stream is not None:
        stream.write(msg + "\n")
        stream.flush()
