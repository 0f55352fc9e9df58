"Every command line explains every flag: `--help` shows a help text for each option and each default once."
import argparse
import configparser
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def console_scripts() -> dict:
    "name → 'module:function' of each console script in settings.ini."
    cfg = configparser.ConfigParser(); cfg.read(ROOT / "settings.ini")
    lines = [l.strip() for l in cfg["DEFAULT"]["console_scripts"].splitlines() if l.strip()]
    return dict(l.split("=", 1) for l in lines)


class _Parsed(Exception):
    def __init__(self, parser): self.parser = parser


def parser_of(target: str) -> argparse.ArgumentParser:
    "The parser a console script builds (caught at its `parse_args` call, before any work)."
    module, fn = target.split(":")
    cli = getattr(importlib.import_module(module), fn)
    def catch(self, *a, **k): raise _Parsed(self)
    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = catch
    try: cli([])
    except _Parsed as p: return p.parser
    finally: argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{target} never parsed its arguments")


@pytest.mark.parametrize("name", sorted(console_scripts()))
def test_every_flag_has_help(name):
    parser = parser_of(console_scripts()[name])
    missing = [a.option_strings[0] if a.option_strings else a.dest for a in parser._actions
               if not a.help and a.dest != "help"]
    assert not missing, f"{name}: no help text for {missing}"
    twice = [a.option_strings[0] for a in parser._actions if a.help and a.help.count("(default:") > 1]
    assert not twice, f"{name}: the default is said twice for {twice}"
    d = parser.description or ""
    assert d and "`" not in d and not d.startswith(("Command line", "Console script")), f"{name}: description {d!r}"
