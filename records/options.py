"""What every ``sublab`` subcommand shares on its command line: value checks that name the option and what it
allows, a help formatter that shows every default, and the device check.

A bad value is refused by ``argparse`` itself (``argument --batch-size: must be an integer >= 1, got 0``, exit
status 2) before any work starts.
"""
from __future__ import annotations

import argparse
import math

__all__ = ["integer", "number", "one_of", "DefaultsHelpFormatter", "DeviceError", "check_device"]


def integer(minimum: int | None = None, maximum: int | None = None):
    """An argparse ``type``: an int within [minimum, maximum] (either bound optional)."""
    return _bounded(int, "an integer", minimum, maximum)


def number(minimum: float | None = None, maximum: float | None = None):
    """An argparse ``type``: a finite float within [minimum, maximum] (either bound optional)."""
    return _bounded(float, "a finite number", minimum, maximum)


def _bounded(kind, noun: str, minimum, maximum):
    allowed = noun + "".join(part for part, bound in ((f" >= {minimum}", minimum), (f" <= {maximum}", maximum))
                             if bound is not None)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if (isinstance(value, float) and not math.isfinite(value)) or \
                (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def one_of(choices, what: str = "value"):
    """An argparse ``type`` for ``nargs`` lists of names: each must be in ``choices`` (shown in the message)."""
    allowed = list(choices)

    def parse(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; allowed: {', '.join(allowed)}")
        return text
    parse.__name__ = what
    return parse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option's help unless the help already states its default; switches
    read ``(default: off)``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.default is False or action.default is None and action.nargs == 0:
            return f"{text} (default: off)"
        if action.default is None:
            return text
        return f"{text} (default: %(default)s)"


class DeviceError(ValueError):
    """A device that is unknown, or not present on this machine."""


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:<k>`` present on this machine; raises :class:`DeviceError` otherwise."""
    device = (device or "cpu").strip()
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
                              f"torch.cuda.is_available() is False); use --device cpu")
        k = int(device[5:]) if ":" in device else 0
        if k >= torch.cuda.device_count():
            raise DeviceError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
        return device
    raise DeviceError(f"--device {device!r} is unknown; allowed: cpu, cuda, cuda:<index>")
