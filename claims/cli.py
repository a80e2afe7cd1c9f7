"""The ``sublab`` command line.

    sublab verify  [--scale quick|full] [--only GLOB] [--json PATH] [--device cpu|cuda] [--resume] [--seed-family N]
                   [--out DIR] [--no-figures] [--strict]
    sublab figures [--results DIR] [--out DIR] [--only GLOB] [--gallery [DIR]]
    sublab list    [--only GLOB] [--json]
    sublab probe   ...    (delegates to probes.cli)
    sublab bench   ...    (delegates to claims.bench, analysis.benchmarks or benchmarks)

Exit codes: 0 the command completed (violated claims are results, not failures); 1 nothing to work on
(no saved results, no figure redrawn) or, with ``--strict``, a claim raised or a paper module failed to
import; 2 usage errors, refused before any work (bad option, a pattern of ``--only`` matching nothing, CUDA
asked for but absent, an output that cannot be written, an output folder in use by another run,
probe/bench not installed); 130 interrupted (finished claims are saved: rerun with ``--resume``).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from records import FolderBusy, package_version
from records.options import DefaultsHelpFormatter

from .registry import SCALES, NoMatchError, Registry, default_registry

__all__ = ["main", "build_parser"]

_DELEGATES = {
    "probe": ("probes.cli",),
    "bench": ("claims.bench", "analysis.benchmarks", "benchmarks.cli", "benchmarks"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sublab", description="Theory-validation workbench for memory-efficient "
                                "subspace optimizers: run the claims of the papers, draw their figures, probe models.")
    p.add_argument("--version", action="version", version=f"sublab {package_version()}")
    sub = p.add_subparsers(dest="command", metavar="{verify,figures,list,probe,bench}")
    fmt = {"formatter_class": DefaultsHelpFormatter}

    v = sub.add_parser("verify", help="run the claims and write verdicts, rows, figures and a report", **fmt)
    v.add_argument("--scale", choices=SCALES, default="quick",
                   help="quick: every claim within minutes on CPU; full: the paper-sized versions")
    v.add_argument("--only", metavar="GLOB", action="append",
                   help="run only claims matching these globs (comma-separated or repeated; 'sumo' = 'sumo.*'; "
                        "each must match a claim) (default: every claim)")
    v.add_argument("--json", metavar="PATH", dest="json_path",
                   help="also write the JSON document of every claim finished in the output folder (default: none)")
    v.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index>")
    v.add_argument("--resume", action="store_true", help="skip claims already finished in the output folder")
    v.add_argument("--seed-family", type=_family, default=0, metavar="N",
                   help="reseed every random draw of every claim from (N, claim, method, repetition); verdicts must "
                        "not depend on it")
    v.add_argument("--out", metavar="DIR",
                   help="output folder (default: results/<scale>/ for family 0, results/<scale>-family<N>/ otherwise)")
    v.add_argument("--no-figures", dest="figures", action="store_false",
                   help="do not draw figures (default: figures are drawn)")
    v.add_argument("--strict", action="store_true",
                   help="exit 1 if a claim raised or a paper module failed to import")
    v.add_argument("--quiet", action="store_true", help="no progress lines and table")

    f = sub.add_parser("figures", help="redraw every figure from saved rows (no experiment is rerun)", **fmt)
    f.add_argument("--results", metavar="DIR",
                   help="results folder of a verify run (default: results/full if it has results, else results/quick)")
    f.add_argument("--out", metavar="DIR", help="where to write the figures (default: <results>/figures/)")
    f.add_argument("--only", metavar="GLOB", action="append",
                   help="redraw only these claims; each glob must match a saved claim (default: every claim)")
    f.add_argument("--readme", metavar="PATH",
                   help="rewrite the claims table between the markers of this file (default: none)")
    f.add_argument("--gallery", metavar="DIR", nargs="?", const="", default=None,
                   help="also copy the canonical PNGs into DIR (default: off; DIR defaults to the repository's "
                        "figures/)")

    ls = sub.add_parser("list", help="list the claim ids and statements", **fmt)
    ls.add_argument("--only", metavar="GLOB", action="append", help="list only these claims (default: every claim)")
    ls.add_argument("--json", action="store_true", help="machine-readable list")

    sub.add_parser("probe", help="LLaMA/RoBERTa probes (see `sublab probe --help`)", add_help=False)
    sub.add_parser("bench", help="optimizer benchmarks (see `sublab bench --help`)", add_help=False)
    return p


def _err(msg: str) -> None:
    print(f"sublab: {msg}", file=sys.stderr)


def _delegate(name: str, argv: list[str]) -> int:
    mod = None
    candidates = _DELEGATES[name]
    for modname in candidates:
        try:
            mod = importlib.import_module(modname)
            break
        except ModuleNotFoundError as e:
            if e.name and (modname == e.name or modname.startswith(e.name + ".")):
                continue  # the module itself is absent: try the next candidate
            _err(f"{name}: {modname} could not be imported: {e} "
                 f"(for the probes install the extra: pip install -e '.[probes]')")
            return 2
        except Exception as e:  # broken module
            _err(f"{name}: {modname} failed to import: {type(e).__name__}: {e}")
            return 1
    if mod is None:
        _err(f"`sublab {name}` is not available: none of the modules {', '.join(candidates)} exists in this "
             f"install of sublab")
        return 2
    if hasattr(mod, "add_arguments"):
        doc = (mod.__doc__ or "").strip().splitlines()
        parser = argparse.ArgumentParser(prog=f"sublab {name}", description=doc[0] if doc else None,
                                         formatter_class=DefaultsHelpFormatter)
        mod.add_arguments(parser)
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:
            return _code(e)
        rc = mod.main(args)
    elif hasattr(mod, "main"):
        rc = mod.main(argv)
    else:
        _err(f"{name}: module {mod.__name__} has no main()")
        return 2
    return int(rc or 0)


def _code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _default_results() -> Path:
    for cand in (Path("results/full"), Path("results/quick")):
        if (cand / "claims").is_dir() and any(cand.glob("claims/*.json")):
            return cand
    return Path("results/quick")


def _gallery_dir(arg: str) -> Path:
    if arg:
        return Path(arg)
    from .runner import REPO_ROOT
    return REPO_ROOT / "figures" if (REPO_ROOT / "pyproject.toml").exists() else Path("figures")


def _family(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid seed family {text!r}; allowed: an integer >= 0")
    return value


def _cmd_verify(a, registry: Registry | None) -> int:
    from . import runner
    try:
        reg = registry if registry is not None else default_registry()
        summary = runner.run(reg, scale=a.scale, only=a.only, out=a.out, device=a.device, resume=a.resume,
                             json_path=a.json_path, figures=a.figures, stream=None if a.quiet else sys.stdout,
                             seed_family=a.seed_family)
    except (NoMatchError, runner.DeviceError, FolderBusy, ValueError) as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        out = a.out or runner.default_out(a.scale, a.seed_family)
        family = f" --seed-family {a.seed_family}" if a.seed_family else ""
        _err(f"interrupted; every finished claim is saved under {out}/claims. Continue with: "
             f"sublab verify --scale {a.scale}{family} --resume" + (f" --out {a.out}" if a.out else ""))
        return 130
    if a.strict and (summary.errors or summary.import_errors):
        _err(f"--strict: {len(summary.errors)} claim(s) raised, {len(summary.import_errors)} module(s) "
             f"failed to import")
        return 1
    return 0


def _cmd_figures(a, registry: Registry | None) -> int:
    from . import runner
    results = Path(a.results) if a.results else _default_results()
    reg = registry if registry is not None else default_registry()
    gallery = _gallery_dir(a.gallery) if a.gallery is not None else None
    try:
        drawn = runner.redraw(results, reg, out=a.out, only=a.only, gallery=gallery)
    except FileNotFoundError as e:
        _err(str(e))
        return 1
    except (NoMatchError, ValueError) as e:
        _err(str(e))
        return 2
    print(f"{len(drawn)} figure(s) redrawn from {results}" + (f"; gallery in {gallery}" if gallery else ""))
    if not drawn:
        _err("no figure was redrawn (the selected claims have no figure, or every figure failed)")
        return 1
    if a.readme:
        env_path = results / "environment.json"
        env = json.loads(env_path.read_text()) if env_path.exists() else None
        try:
            runner.update_readme(a.readme, runner.readme_table(list(runner.load_records(results).values()), env))
        except (OSError, ValueError) as e:
            _err(str(e))
            return 1
        print(f"claims table written to {a.readme}")
    return 0


def _cmd_list(a, registry: Registry | None) -> int:
    from . import runner
    reg = registry if registry is not None else default_registry()
    for mod, tb in reg.import_errors.items():
        _err(f"warning: could not import {mod}: {(tb.strip().splitlines() or [''])[-1]}")
    try:
        claims = runner.select_each(reg, a.only)
    except NoMatchError as e:
        _err(str(e))
        return 2
    if a.json:
        print(json.dumps([{"id": c.id, "paper": c.paper, "statement": c.statement, "source": c.source,
                           "figure": c.draw is not None} for c in claims], indent=1))
        return 0
    if not claims:
        print("no claims registered yet (add a module claims/<paper>.py; see claims/registry.py)")
        return 0
    w = max(len(c.id) for c in claims)
    for c in claims:
        print(f"{c.id:<{w}}  {c.statement}")
    return 0


def main(argv: list[str] | None = None, *, registry: Registry | None = None) -> int:
    """Entry point of ``sublab``; returns the exit code.  ``registry`` replaces the package's (tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATES:
        return _delegate(argv[0], argv[1:])
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as e:
        return _code(e)
    if a.command is None:
        parser.print_help(sys.stderr)
        return 2
    handler = {"verify": _cmd_verify, "figures": _cmd_figures, "list": _cmd_list}[a.command]
    return handler(a, registry)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
