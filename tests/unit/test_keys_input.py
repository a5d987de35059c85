"""``signing-proxy keys``: secrets come only from standard input or a file, are read as plain
strings, and are never echoed -- not even when pasted on the command line by mistake."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.keys.cli import InputError, parse_fields, read_fields

SECRET = "S3CRET-value-0x1F"


@pytest.mark.parametrize(
    "text",
    [
        "api_key=AK\nsecret_key=0x1F==\n",
        "# from the venue console\n\napi_key=AK\nsecret_key=0x1F==\n",
        "api_key: AK\nsecret_key: 0x1F==\n",
        '{"api_key": "AK", "secret_key": "0x1F=="}',
    ],
)
def test_the_accepted_input_forms(text: str) -> None:
    assert parse_fields(text) == {"api_key": "AK", "secret_key": "0x1F=="}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("secret_key: 0x1F", "0x1F"),  # YAML 1.1 would read an int 31
        ("secret_key: 1e3", "1e3"),  # ... or a float
        ("secret_key: 0123", "0123"),  # ... or an octal
        ("secret_key: yes", "yes"),  # ... or a bool
        ("secret_key=a: b=c", "a: b=c"),  # key=value keeps everything after the first '='
    ],
)
def test_values_stay_exactly_as_written(text: str, value: str) -> None:
    assert parse_fields(text)["secret_key"] == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        f"api_key=AK\n{SECRET}\n",  # a line without '='
        f"api_key=AK\napi_key={SECRET}\n",  # twice
        f"api_key: AK\napi_key: {SECRET}\n",  # twice, YAML
        f"- {SECRET}\n",  # not a mapping
        f"secret_key: [{SECRET}]\n",  # not a string
        f'{{"secret_key": "{SECRET}"',  # broken JSON
    ],
)
def test_bad_input_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_fields(text)
    assert SECRET not in str(info.value)


def test_read_fields_from_a_file_or_stdin(tmp_path: Path) -> None:
    path = tmp_path / "keys.env"
    path.write_text("api_key=AK\n")
    path.chmod(0o600)
    assert read_fields(str(path), ()) == {"api_key": "AK"}
    assert read_fields(None, (), stdin=io.StringIO("api_key=AK\n")) == {"api_key": "AK"}


def test_a_terminal_is_prompted_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "v")
    assert read_fields(None, ("api_key", "secret_key"), stdin=Tty()) == {"api_key": "v", "secret_key": "v"}
    assert asked == ["api_key: ", "secret_key: "]


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "put", "--venue", "coinex", "--account", "main", "--secret-key", SECRET],
        ["keys", "put", "--venue", "coinex", "--account", "main", SECRET],
        ["keys", "put", "--venue", "coinex", "--account", "main", f"--secret_key={SECRET}"],
        ["keys", "rotate", "--venue", "coinex", "--account", "main", "--transit", SECRET],
        ["keys", "retire", "--venue", "coinex", "--account", "main", "--below", SECRET],
        ["keys", SECRET],
    ],
)
def test_secrets_on_the_command_line_are_refused_and_not_echoed(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert SECRET not in captured.err + captured.out


def test_keys_takes_no_secret_options() -> None:
    from proxy.cli import _parser

    keys = _parser(redact=True)
    for command in ("put", "rotate"):
        help_text = keys.parse_known_args(["keys", command, "--venue", "v", "--account", "a"])[0]
        options = set(vars(help_text))
        assert not {name for name in options if "secret" in name or "key" in name} - {"keys_command"}
