"""The README's API example runs as written."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_api_example_runs(capsys):
  text = README.read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, re.S)
  assert blocks, "README has no python example"
  exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102
  out = capsys.readouterr().out
  assert "| clean |" in out


def test_readme_test_command_is_marked_for_ci():
  text = README.read_text()
  m = re.search(r"<!-- ci: test command -->\n```bash\n(.+)\n```", text)
  assert m and "pytest" in m.group(1)
