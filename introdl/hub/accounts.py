"""Real Unix accounts for the local hub: one per student and per staff member, homes 0700.

Debian's `useradd -m` makes homes 0755 (every student could read every other home and the
instructor's solutions); every account made or reused here gets 0700. Passwords are random, set
with chpasswd for JupyterHub's PAM authenticator, and kept in a root-only file of the hub's state.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Marks accounts this project made, so that `make hub` never takes over a person's real account.
GECOS = "introdl demo hub account"


@dataclass(frozen=True)
class Account:
    name: str
    role: str  # "student" or "staff"
    password: str

    @property
    def home(self) -> Path:
        return Path(pwd.getpwnam(self.name).pw_dir)

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.name).pw_uid


class AccountError(RuntimeError):
    """An account that cannot be made or is not ours to use."""


def ensure_account(name: str, *, system: bool = False) -> None:
    """Make the Unix account (home 0700) unless it exists; refuse accounts this project did not make."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        args = ["useradd", "--comment", GECOS, "--shell", "/bin/bash"]
        args += ["--system", "--no-create-home"] if system else ["--create-home"]
        subprocess.run([*args, name], check=True, capture_output=True, text=True)
        entry = pwd.getpwnam(name)
    if entry.pw_gecos.split(",")[0] != GECOS:
        raise AccountError(
            f"a Unix account {name!r} exists and was not made by introdl: choose other names "
            "(INTRODL_HUB_STUDENTS / INTRODL_HUB_STAFF) or remove it"
        )
    if not system:
        os.chmod(entry.pw_dir, 0o700)


def set_password(name: str, password: str) -> None:
    subprocess.run(
        ["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True
    )


def load_or_make(
    state: Path, *, students: list[str], staff: list[str], passwords: dict[str, str] | None = None
) -> list[Account]:
    """The accounts of the demo hub, made on first use; passwords kept in state/accounts.json (0600)."""
    record = state / "accounts.json"
    known: dict[str, str] = json.loads(record.read_text()) if record.is_file() else {}
    known.update(passwords or {})
    accounts = []
    for role, names in (("staff", staff), ("student", students)):
        for name in names:
            ensure_account(name)
            password = known.get(name) or secrets.token_urlsafe(9)
            set_password(name, password)
            known[name] = password
            accounts.append(Account(name=name, role=role, password=password))
    record.write_text(json.dumps(known, indent=1))
    os.chmod(record, 0o600)
    return accounts
