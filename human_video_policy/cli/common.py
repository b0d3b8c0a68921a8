"""What every ``hvp`` subcommand shares: the help layout, the ``WxH`` size option, and what a
command group does when no subcommand is given.

* :func:`apply_help_format` gives every parser of the command tree a help formatter that shows
  each option's default as ``(default: X)``; an option whose help already says ``default:`` in
  words (e.g. ``(default: the preset's)``) is left as it is, and a flag (``store_true``) is off
  unless given. ``hvp`` applies it to the whole tree (cli/main.py), so a new command gets it too.
* :func:`image_size` (``validation.image_size_arg``) is the one parser of ``--image-size``:
  ``WxH`` in pixels, width first, as realsense-ros, ffmpeg and v4l2 write it (``640x480``).
* :func:`print_help` is the action of a command group called without a subcommand
  (``hvp dataset``, ``hvp teleop``...): its help on stdout, exit code 2.
"""

from __future__ import annotations

import argparse
import re

from human_video_policy.validation import image_size_arg

__all__ = ["apply_help_format", "image_size", "print_help", "shows_default"]

_FLAG_ACTIONS = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._AppendConstAction,
    argparse._CountAction,
    argparse._HelpAction,
    argparse._VersionAction,
)
_SAYS_DEFAULT = re.compile(r"default:|%\(default\)", re.IGNORECASE)


def shows_default(action: argparse.Action) -> bool:
    """Whether the formatter appends ``(default: X)`` to this action's help."""
    if not action.option_strings or action.help in (None, argparse.SUPPRESS):
        return False
    if isinstance(action, _FLAG_ACTIONS) or action.required:
        return False
    if _SAYS_DEFAULT.search(action.help):
        return False
    return action.default not in (None, "", [], argparse.SUPPRESS)


class _DefaultsMixin:
    """``_get_help_string`` that appends the default (see :func:`shows_default`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if shows_default(action):
            text += " (default: %(default)s)"
        return text


_FORMATTERS: dict[type, type] = {}


def _with_defaults(formatter: type) -> type:
    if issubclass(formatter, _DefaultsMixin):
        return formatter
    if formatter is argparse.ArgumentDefaultsHelpFormatter:
        formatter = argparse.HelpFormatter  # the mixin shows the defaults (not None / False)
    if formatter not in _FORMATTERS:
        _FORMATTERS[formatter] = type(f"Hvp{formatter.__name__}", (_DefaultsMixin, formatter), {})
    return _FORMATTERS[formatter]


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend(dict.fromkeys(action.choices.values()))  # aliases: one parser
    return found


def walk_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every parser below it, depth first."""
    out = [parser]
    for child in _subparsers(parser):
        out.extend(walk_parsers(child))
    return out


def apply_help_format(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give ``parser`` and all its subcommands' parsers the defaults-showing formatter, keeping
    each one's description layout (raw or filled); returns ``parser``."""
    for p in walk_parsers(parser):
        p.formatter_class = _with_defaults(p.formatter_class)
    return parser


def print_help(parser: argparse.ArgumentParser) -> int:
    """What a command group does without a subcommand: print its help, return exit code 2."""
    parser.print_help()
    return 2


#: ``--image-size WxH`` -> (width, height); the one parser, in validation.py so that module
#: CLIs below cli/ (training.record_demos) use it too.
image_size = image_size_arg
