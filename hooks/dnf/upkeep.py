# upkeep: dnf 4 plugin. Before rpm runs, hand the resolved transaction to
# upkeep-guard in apt's hook protocol (version 3): the same checks and the
# same policy as the apt hook (a forbidden downgrade, however spelled, or a
# configured "block" vetoes the transaction). See upkeep-guard(8).
#
# It never breaks dnf by accident: if upkeep-guard is missing or fails in
# any other way than a veto (exit 3), it warns and lets dnf go on.

import os
import subprocess

import dnf
import dnf.exceptions

GUARD = "/usr/bin/upkeep-guard"
VETO = 3


def _evr(pkg):
    version = "%s-%s" % (pkg.version, pkg.release)
    if pkg.epoch:
        version = "%s:%s" % (pkg.epoch, version)
    return version


def _arch(pkg):
    return pkg.arch or "noarch"


def hook_stream(transaction):
    """The transaction as apt's Pre-Install-Pkgs stream, protocol 3: each
    incoming package with the version it replaces (same name), and every
    other outgoing package as a removal, so a downgrade spelled as a swap
    of two packages is seen as such."""
    T = dnf.transaction
    incoming = (T.PKG_INSTALL, T.PKG_UPGRADE, T.PKG_DOWNGRADE, T.PKG_REINSTALL)
    outgoing = (T.PKG_UPGRADED, T.PKG_DOWNGRADED, T.PKG_REINSTALLED,
                T.PKG_OBSOLETED, T.PKG_REMOVE, T.PKG_ERASE)
    items = list(transaction)
    old = {}
    for item in items:
        if item.action in outgoing:
            old.setdefault(item.pkg.name, []).append(item.pkg)
    lines = ["VERSION 3", "upkeep::Source=dnf", ""]
    for item in items:
        if item.action not in incoming:
            continue
        pkg = item.pkg
        where = pkg.location or "-"
        replaced = old.get(pkg.name)
        if replaced:
            o = replaced.pop(0)
            direction = {T.PKG_UPGRADE: "<", T.PKG_DOWNGRADE: ">",
                         T.PKG_REINSTALL: "="}.get(item.action, "<")
            lines.append("%s %s %s none %s %s %s none %s" % (
                pkg.name, _evr(o), _arch(o), direction, _evr(pkg), _arch(pkg), where))
        else:
            lines.append("%s - - none < %s %s none %s" % (pkg.name, _evr(pkg), _arch(pkg), where))
    for pkgs in old.values():
        for o in pkgs:
            lines.append("%s %s %s none > - - none **REMOVE**" % (o.name, _evr(o), _arch(o)))
    return "\n".join(lines) + "\n"


class Upkeep(dnf.Plugin):
    name = "upkeep"

    def pre_transaction(self):
        transaction = self.base.transaction
        if transaction is None:
            return
        stream = hook_stream(transaction)
        guard = os.environ.get("UPKEEP_GUARD", GUARD)
        args = [guard]
        root = self.base.conf.installroot
        if root and root != "/":
            args += ["--root", root]
        args += ["apt-hook", "--caller", "dnf"]
        env = dict(os.environ)
        env.pop("APT_HOOK_INFO_FD", None)
        try:
            proc = subprocess.run(args, input=stream.encode(), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            print("upkeep: warning: cannot run %s (%s); not checking this transaction" % (guard, e))
            return
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
        if proc.returncode == VETO:
            raise dnf.exceptions.Error("upkeep vetoed this transaction:\n" + out)
        if out:
            print(out)
