"""The READMEs' commands stay true: every `python -m X` / `python benchmarks/X.py` they
show names an entry point that exists, and every flag they pass is one it accepts."""

import concurrent.futures
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READMES = ("README.md", "mobile_demo/README.md")
_COMMAND = re.compile(r"python (-m ([\w.]+)|(benchmarks/\w+\.py))([^`\n]*)")
_FLAG = re.compile(r"(?<![\w-])--(\w+)")
# A flag in absl's --helpfull listing: "  --name:" or "  --[no]name:".
_LISTED = re.compile(r"^\s+--(\[no\])?(\w+):", re.MULTILINE)


def readme_commands():
  """[(readme, entry point, [flags])] from code blocks and inline code alike."""
  found = []
  for name in READMES:
    with open(os.path.join(ROOT, name)) as f:
      parts = f.read().split("```")
    # Odd parts are code blocks: shell continuations join lines.  Even parts are prose:
    # inline code wrapped over two lines joins.
    text = "\n".join(
        re.sub(r"\\\n\s*", " ", part) if i % 2 else
        re.sub(r"`([^`]*)`", lambda m: "`" + m.group(1).replace("\n", " ") + "`", part)
        for i, part in enumerate(parts))
    for match in _COMMAND.finditer(text):
      target = match.group(2) or match.group(3)
      found.append((name, target, _FLAG.findall(match.group(4))))
  return found


def _accepted_flags(target):
  command = ([sys.executable, "-m", target] if not target.endswith(".py")
             else [sys.executable, os.path.join(ROOT, target)])
  result = subprocess.run(command + ["--helpfull"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
  assert result.returncode == 0, (target, result.stderr[-2000:])
  names = set()
  for negatable, name in _LISTED.findall(result.stdout):
    names.add(name)
    if negatable:
      names.add("no" + name)
  return names


def test_readme_commands_name_real_entry_points_and_flags():
  commands = readme_commands()
  assert len(commands) >= 20, commands  # the parser still finds the READMEs' commands
  # Two at a time: each tool's start is mostly one core importing TensorFlow.
  targets = sorted({target for _, target, _ in commands})
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    accepted = dict(zip(targets, pool.map(_accepted_flags, targets)))
  wrong = []
  for readme, target, flags in commands:
    wrong += [f"{readme}: {target} --{flag}" for flag in flags
              if flag not in accepted[target]]
  assert not wrong, "flags the READMEs show but the tools do not take:\n" + "\n".join(wrong)
