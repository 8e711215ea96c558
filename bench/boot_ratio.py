#!/usr/bin/env python3
"""Harness overhead and throughput, as ratios from one run on one machine.

Everything boots the rescue fixture ISO (fixtures/build-iso rescue) with the
same QEMU machine (q35, `--accel tcg`, -cpu qemu64, 1 GiB, 2 vCPUs, the ISO as
a CD-ROM, a virtio NIC on user networking, -no-reboot), side by side:

  bare:       QEMU driven by this script alone: Esc at the isolinux menu, type
              `boot-serial`, wait for the autologin shell to answer a probe;
              then, the console quieted as isotest quiets it, until the guest
              is ready: start-up over (`systemctl
              is-system-running --wait` in the shell) and sshd answering on
              its forwarded port (the banner; the fixture, like NixOS, makes
              its host keys on first boot, and the SSH logins need them).
  bare-wait:  QEMU driven by nobody: the menu's timeout runs out (10 s) and
              isolinux loads its default entry; measured to isolinux's
              `Loading /boot/bzImage` on the serial console (the default entry
              has no serial console, so nothing of the kernel follows there).
  isotest:    `isotest run scenarios/rescue.yaml --trial TRIAL --image ISO
              --accel tcg` (default trial rescue::x86_64::bios: the scenario
              expands to three trials, the bench measures one).

Each pair is one boot of each kind, in alternating order (so that a machine
getting busier or quieter favours neither), and each ratio is the median of
the pairs, with its spread (lowest and highest). Reported:

  shell    isotest boot-to-shell / bare boot-to-shell (target <= 1.03). Both
           from QEMU connecting its serial console to the shell answering.
  verdict  isotest time-to-verdict (report.json's total_secs: the flake's
           expectations, QEMU, boot, every check, SSH logins, steps, report)
           / bare boot-to-shell (target <= 1.10). Also the bare boot to a
           ready guest over its boot-to-shell, and time-to-verdict over that:
           what the guest itself needs after the shell before every check
           can be answered, and what isotest adds beyond it. Then the same
           without the boots' variance: each side's time after its own
           shell (isotest to its verdict, of which its console exchanges
           per commands.log; the bare guest to ready) and the difference
           (target <= 1 s: the verdict within 1 s of a ready guest).
           isotest's side is its time-to-verdict less its boot-to-shell, so
           its time before power-on (the flake's expectations, the menu
           read off the ISO, QEMU's start) is in it.
  menu     isotest to `Loading /boot/bzImage` (it picks the serial entry at
           once) / bare-wait to the same line (target < 1: faster). isotest's
           time is read off its console.log as it grows, from when the file
           appears (when isotest attaches the console).
  rss      the harness's own peak resident memory per trial (VmHWM of the
           isotest process, not of QEMU; target <= 50 MiB).
  throughput  4 trials of the same ISO (an `images:` scenario) with every
           `--jobs` x `--cpus` combination and with neither option (isotest's
           own defaults): wall time of each, and the defaults' time over the
           best combination's (target <= 1.05).

  shared   N scenarios (default 8, and half as many) of the rescue ISO on
           x86_64 BIOS (copies of rescue.yaml, `--image ISO`), run together:
           wall time with shared boots (isotest's default) over the same with
           `--fresh-boot` (target <= 0.3), and over one scenario alone (target
           <= 1.5; half as many: <= 1.4); all with isotest's own --jobs and
           --cpus. From the shared runs' reports: each restore, from QEMU's
           start to a shell that answers with the clock set and the random
           generator reseeded (target <= 1 s), each save (target <= 2 s), and
           isotest's peak RSS (target <= 50 MiB). Rounds alternate the order.

  labgrid  the hostname-only scenario (`expect: hostname: rescue` on the
           rescue ISO, x86_64 BIOS) with isotest (`--accel tcg --cpus 2`)
           and with labgrid 26.0.1 (bench/labgrid_hostname.py: its QEMUDriver
           on the bare machine, the serial entry picked at the isolinux prompt
           as the bare boot picks it, its ShellDriver to the autologin shell,
           then `cat /proc/sys/kernel/hostname`), in alternating pairs: each
           process's wall time, start to exit, and isotest's over labgrid's
           (target < 1: ahead). labgrid goes into a venv of its own under
           ~/.cache/isotest/bench-venv (pip, from PyPI) the first time.

Options: --pairs N (default 7), --only LIST (shell,verdict,menu,rss,throughput,shared,labgrid;
shell, verdict, rss share the same isotest runs), --trial NAME, --jobs 1,2,4,
--cpus 1,2, --throughput-rounds N (default: 3; each round runs every
combination once, and isotest with no --jobs/--cpus (its own defaults), in
alternating order; trials boot from power-on, `--fresh-boot`, since the grid
measures boots side by side), --shared-rounds N (default 7), --shared-scenarios N
(default 8), --no-record (do not append to
bench/RESULTS.md; use it for smoke runs). Absolute times vary from machine to
machine; the ratios are what to compare. Prints one line per boot as it goes,
then the results, and appends them to bench/RESULTS.md.

Time: a pair is about 2.5 boots (bare, bare-wait's 15 s, isotest), about 2.5
minutes under TCG on 2 cores; throughput is 7 runs (6 combinations and the
defaults) x 4 trials per round.
"""
import argparse
import glob
import itertools
import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISOTEST = os.path.join(repo, "target", "release", "isotest")
LOADING = b"Loading /boot/bzImage"


def qemu_command(iso, sock, ssh_port=None):
    """The bare machine: isotest's command line for this trial, without QMP and pidfile."""
    netdev = "user,id=net0" + (f",hostfwd=tcp:127.0.0.1:{ssh_port}-:22" if ssh_port else "")
    return ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "qemu64", "-m", "1024M", "-smp", "2",
            "-drive", f"file={iso},media=cdrom,readonly=on,format=raw",
            "-chardev", f"socket,id=s0,path={sock}", "-serial", "chardev:s0",
            "-display", "none", "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile=",
            "-no-reboot"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_banner(port):
    """Whether sshd answers on the forwarded port (QEMU accepts the connection
    at once; the banner comes only once the guest's sshd runs)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.settimeout(1)
            return c.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def bare(iso, choose):
    """Seconds from QEMU connecting its serial port to: with choose=True, the
    shell's answer and a ready guest (start-up over, `systemctl
    is-system-running --wait`, and sshd answering), as a dict; with
    choose=False, isolinux loading the default entry."""
    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as d:
        sock = os.path.join(d, "serial.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(sock)
        listener.listen(1)
        port = free_port()
        qemu = subprocess.Popen(qemu_command(iso, sock, port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            listener.settimeout(60)
            conn, _ = listener.accept()
            start = time.monotonic()
            buf, state, times = b"", "menu" if choose else "wait", {}
            while time.monotonic() - start < 600:
                ready, _, _ = select.select([conn], [], [], 0.2 if state == "up" else 5)
                if ready:
                    data = conn.recv(4096)
                    if not data:
                        raise SystemExit("bare boot: QEMU closed the console")
                    buf += data
                if state == "wait" and LOADING in buf:
                    return time.monotonic() - start
                if state == "menu" and b"Press [Tab]" in buf:
                    conn.sendall(b"\x1b"); state = "prompt"; buf = b""
                elif state == "prompt" and b"boot:" in buf:
                    conn.sendall(b"boot-serial\r"); state = "login"; buf = b""
                elif state == "login" and b"login:" in buf:
                    conn.sendall(b"echo BENCH_$((6*7))\r"); state = "shell"
                elif state == "shell":
                    if b"BENCH_42" in buf:
                        times["shell"] = time.monotonic() - start
                        # Quieted as isotest quiets it (run::quiet_console): kernel and
                        # systemd status lines on a serial console slow a TCG guest.
                        conn.sendall(b"dmesg -n 1; kill -55 1; systemctl is-system-running --wait; echo BENCH_UP_$((6*7))\r")
                        state, buf = "up", b""
                    elif not ready:  # the probe was lost in getty's hand-over: again
                        conn.sendall(b"echo BENCH_$((6*7))\r")
                elif state == "up":
                    if b"BENCH_UP_42" in buf and "started" not in times:
                        times["started"] = time.monotonic() - start
                    if "sshd" not in times and ssh_banner(port):
                        times["sshd"] = time.monotonic() - start
                    if "started" in times and "sshd" in times:
                        times["ready"] = max(times["started"], times["sshd"])
                        return times
            raise SystemExit("bare boot: not done within 600 s")
        finally:
            qemu.kill(); qemu.wait()


def watch_console(path, done, seen):
    """When `path` appears, and when LOADING first shows in it (monotonic times)."""
    while not done.is_set():
        try:
            with open(path, "rb") as f:
                seen.setdefault("attached", time.monotonic())
                if LOADING in f.read():
                    seen["loading"] = time.monotonic()
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)


def peak_rss_kib(pid):
    """VmHWM: the process's own peak resident set (children not included)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def isotest(args, artifacts, env, console_log=None):
    """Runs isotest; returns (wall seconds, peak RSS in KiB, console watch)."""
    done, seen = threading.Event(), {}
    watcher = None
    if console_log:
        watcher = threading.Thread(target=watch_console, args=(console_log, done, seen), daemon=True)
        watcher.start()
    start = time.monotonic()
    proc = subprocess.Popen([ISOTEST, "run", *args, "--artifacts", artifacts, "--accel", "tcg"], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rss = None
    stderr = b""
    while proc.poll() is None:
        rss = peak_rss_kib(proc.pid) or rss
        time.sleep(0.2)
    stderr = proc.stderr.read()
    wall = time.monotonic() - start
    done.set()
    if watcher:
        watcher.join()
    if proc.returncode not in (0,):
        raise SystemExit(f"isotest exited with {proc.returncode}:\n{stderr.decode(errors='replace')[-2000:]}")
    return wall, rss, seen


def isotest_trial(iso, trial, env):
    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as d:
        trial_dir = os.path.join(d, trial.replace("::", "-"))
        wall, rss, seen = isotest(["scenarios/rescue.yaml", "--trial", trial, "--image", iso], d, env,
                                  os.path.join(trial_dir, "console.log"))
        report = json.load(open(os.path.join(trial_dir, "report.json")))
        phases = dict(report["phases"])
        loading = seen["loading"] - seen["attached"] if "loading" in seen and "attached" in seen else None
        checks = [(c["name"], round(c["secs"], 1)) for c in report["checks"]]
        console = console_secs_after(os.path.join(trial_dir, "commands.log"), phases["shell"])
        return {"shell": phases["shell"], "verdict": report["total_secs"], "wall": wall, "rss": rss, "loading": loading,
                "phases": report["phases"], "checks": checks, "console": console}


EXCHANGE = re.compile(rb"at ([0-9.]+) s, took ([0-9.]+) s")


def console_secs_after(commands_log, shell):
    """Seconds the console spent on exchanges that began at or after `shell`
    (the shell phase, seconds since power-on): commands.log's `at A s, took T
    s`, seconds since the console was attached (just before power-on, so
    never less), once per exchange (the commands of a batch share theirs)."""
    exchanges = {(float(a), float(t)) for a, t in EXCHANGE.findall(open(commands_log, "rb").read())}
    return sum(t for a, t in exchanges if a >= shell - 0.005)


def guest_cpus(artifacts):
    """The vCPUs (`-smp N`) of every trial's QEMU, from the report.json files under `artifacts`."""
    found = set()
    for path in glob.glob(os.path.join(artifacts, "**", "report.json"), recursive=True):
        cmdline = (json.load(open(path)).get("qemu") or {}).get("command_line") or []
        found |= {int(n) for flag, n in zip(cmdline, cmdline[1:]) if flag == "-smp" and n.isdigit()}
    return found


def throughput_scenario(iso, d, trials):
    """rescue.yaml on x86_64 BIOS, with `trials` prebuilt images (links to the same ISO)."""
    images = []
    for i in range(trials):
        link = os.path.join(d, f"t{i + 1}.iso")
        os.symlink(iso, link)
        images.append(link)
    text = open(os.path.join(repo, "scenarios", "rescue.yaml")).read()
    text = re.sub(r"(?m)^flake:.*$", f"flake: path:{os.path.join(repo, 'fixtures', 'flake')}", text)
    text = re.sub(r"(?m)^arch:.*$", "arch: x86_64\nfirmware: bios\nimages: [" + ", ".join(images) + "]", text)
    path = os.path.join(d, "throughput.yaml")
    open(path, "w").write(text)
    return path


def scenario_copies(d, n):
    """`n` copies of rescue.yaml (x86_64 BIOS), s1.yaml to sN.yaml: scenarios of one ISO."""
    text = open(os.path.join(repo, "scenarios", "rescue.yaml")).read()
    text = re.sub(r"(?m)^flake:.*$", f"flake: path:{os.path.join(repo, 'fixtures', 'flake')}", text)
    text = re.sub(r"(?m)^arch:.*$", "arch: x86_64\nfirmware: bios", text)
    paths = []
    for i in range(n):
        path = os.path.join(d, f"s{i + 1}.yaml")
        open(path, "w").write(text)
        paths.append(path)
    return paths


def shared_boots(iso, env, n, rounds, log):
    """Wall times of n scenarios shared, n fresh, n/2 shared, one alone; restores, saves, RSS."""
    half = max(2, n // 2)
    walls = {"shared": [], "fresh": [], "half": [], "one": []}
    restores, saves, rss = [], [], []
    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as d:
        paths = scenario_copies(d, n)
        runs = {"shared": (paths, []), "fresh": (paths, ["--fresh-boot"]), "half": (paths[:half], []), "one": (paths[:1], [])}
        order = list(runs)
        for round_ in range(rounds):
            for kind in (order if round_ % 2 == 0 else order[::-1]):
                scenarios, flags = runs[kind]
                with tempfile.TemporaryDirectory(prefix="isotest-bench-") as art:
                    wall, peak, _ = isotest([*scenarios, "--image", iso, *flags], art, env)
                    walls[kind].append(wall)
                    if kind != "fresh" and peak:
                        rss.append(peak / 1024)
                    for path in glob.glob(os.path.join(art, "*", "report.json")):
                        shared = json.load(open(path)).get("shared") or {}
                        if shared.get("role") == "restored":
                            restores.append(shared["restore_secs"])
                        elif shared.get("role") == "saved":
                            saves.append(shared["save_secs"])
                        elif shared and kind != "fresh":
                            raise SystemExit(f"{path}: not shared: {shared}")
                log(f"shared round {round_ + 1}: {len(scenarios)} scenario(s) {' '.join(flags) or 'shared'}: {wall:.1f} s")
    median = {k: statistics.median(w) for k, w in walls.items()}
    ratio = lambda a, b: spread([x / y for x, y in zip(walls[a], walls[b])])
    return [
        f"shared boots, {n} scenarios of one ISO (x86_64 BIOS, isotest's own --jobs/--cpus), {rounds} round(s): "
        f"shared {spread(walls['shared'], '{:.0f}')} s, --fresh-boot {spread(walls['fresh'], '{:.0f}')} s, "
        f"{half} shared {spread(walls['half'], '{:.0f}')} s, one scenario alone {spread(walls['one'], '{:.0f}')} s",
        f"shared / --fresh-boot {ratio('shared', 'fresh')}x (target <= 0.3; medians {median['shared'] / median['fresh']:.2f}x)",
        f"{n} shared / one alone {ratio('shared', 'one')}x (target <= 1.5)",
        f"{half} shared / one alone {ratio('half', 'one')}x (target <= 1.4)",
        f"restore, QEMU's start to a shell answering with clock set and reseeded {spread(restores)} s (target <= 1)",
        f"save {spread(saves)} s (target <= 2)",
        f"harness peak RSS, shared runs {spread(rss, '{:.1f}')} MiB (target <= 50)",
    ]


LABGRID = "labgrid==26.0.1"


def labgrid_python():
    """A Python with labgrid: a venv of the bench's own, made once."""
    venv = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "isotest", "bench-venv")
    python = os.path.join(venv, "bin", "python3")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    have = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('labgrid'))"],
                          capture_output=True, text=True)
    if have.stdout.strip() != LABGRID.split("==")[1]:
        subprocess.run([python, "-m", "pip", "install", "-q", LABGRID], check=True)
    return python


def labgrid_side_by_side(iso, env, pairs, log):
    """Wall times of the hostname-only scenario under isotest and under labgrid, in alternating pairs."""
    python = labgrid_python()
    walls = {"isotest": [], "labgrid": []}
    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as d:
        scenario = os.path.join(d, "hostname.yaml")
        open(scenario, "w").write(f"image: {iso}\narch: x86_64\nfirmware: bios\nmemory: 1G\nexpect:\n  hostname: rescue\n")
        for pair in range(pairs):
            for kind in (["isotest", "labgrid"] if pair % 2 == 0 else ["labgrid", "isotest"]):
                if kind == "isotest":
                    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as art:
                        wall, _, _ = isotest([scenario, "--cpus", "2"], art, env)
                else:
                    start = time.monotonic()
                    done = subprocess.run([python, os.path.join(repo, "bench", "labgrid_hostname.py"), iso],
                                          capture_output=True, text=True)
                    wall = time.monotonic() - start
                    if done.returncode != 0:
                        raise SystemExit(f"labgrid: exit {done.returncode}: {done.stdout[-500:]} {done.stderr[-2000:]}")
                walls[kind].append(wall)
                log(f"labgrid pair {pair + 1}: {kind} hostname-only {wall:.1f} s")
    ratios = [i / l for i, l in zip(walls["isotest"], walls["labgrid"])]
    return [f"hostname-only scenario, wall start to exit: isotest {spread(walls['isotest'], '{:.1f}')} s, "
            f"{LABGRID} {spread(walls['labgrid'], '{:.1f}')} s; isotest / labgrid {spread(ratios)}x (target < 1)"]


def spread(values, fmt="{:.2f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))}, n={len(values)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--only", default="shell,verdict,menu,rss,throughput,shared,labgrid")
    parser.add_argument("--trial", default="rescue::x86_64::bios")
    parser.add_argument("--jobs", default="1,2,4")
    parser.add_argument("--cpus", default="1,2")
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--throughput-trials", type=int, default=4)
    parser.add_argument("--shared-rounds", type=int, default=7)
    parser.add_argument("--shared-scenarios", type=int, default=8)
    parser.add_argument("--no-record", action="store_true")
    a = parser.parse_args()
    only = set(a.only.split(","))
    unknown = only - {"shell", "verdict", "menu", "rss", "throughput", "shared", "labgrid"}
    if unknown or a.pairs < 1 or a.throughput_rounds < 1 or a.shared_rounds < 1 or a.shared_scenarios < 2:
        parser.error(f"bad --only {sorted(unknown)} or a count below 1")
    if a.trial != "rescue::x86_64::bios" and only & {"shell", "verdict", "menu"}:
        parser.error("the bare boots are of x86_64 with BIOS: shell, verdict and menu need --trial rescue::x86_64::bios")

    env = dict(os.environ, RESCUE_PASSWORD="nixos-rescue")
    env.setdefault("NIX_CONFIG", open(os.path.join(repo, "fixtures", "nix.conf")).read())
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "isotest"], cwd=repo, check=True)
    iso = subprocess.run([os.path.join(repo, "fixtures/build-iso"), "rescue"], check=True, env=env,
                         capture_output=True, text=True).stdout.strip()
    log = lambda text: print(text, file=sys.stderr, flush=True)
    results = []

    if only & {"shell", "verdict", "menu", "rss"}:
        rows = []
        for pair in range(a.pairs):
            kinds = ["bare", "bare-wait", "isotest"] if "menu" in only else ["bare", "isotest"]
            if not only & {"shell", "verdict"}:
                kinds.remove("bare")
            row = {}
            for kind in (kinds if pair % 2 == 0 else kinds[::-1]):
                if kind == "bare":
                    times = bare(iso, choose=True)
                    row["bare"], row["ready"] = times["shell"], times["ready"]
                    log(f"pair {pair + 1}: bare boot-to-shell {row['bare']:.1f} s, to a ready guest {row['ready']:.1f} s "
                        f"(start-up over {times['started']:.1f} s, sshd answering {times['sshd']:.1f} s)")
                elif kind == "bare-wait":
                    row["bare_wait"] = bare(iso, choose=False)
                    log(f"pair {pair + 1}: bare waiting out the menu, to `Loading /boot/bzImage`: {row['bare_wait']:.1f} s")
                else:
                    row["isotest"] = isotest_trial(iso, a.trial, env)
                    r = row["isotest"]
                    loading = f"{r['loading']:.1f} s" if r["loading"] is not None else "not seen"
                    log(f"pair {pair + 1}: isotest shell {r['shell']:.1f} s, verdict {r['verdict']:.1f} s "
                        f"(console exchanges after the shell {r['console']:.2f} s), "
                        f"wall {r['wall']:.1f} s, to `Loading /boot/bzImage` {loading}, peak RSS {r['rss']} KiB; "
                        f"phases {[(p, round(t, 1)) for p, t in r['phases']]}; checks (s) {r['checks']}")
            rows.append(row)
        if "bare" in rows[0]:
            results.append(f"bare boot-to-shell {spread([r['bare'] for r in rows], '{:.1f}')} s")
        if "shell" in only:
            results.append(f"isotest boot-to-shell {spread([r['isotest']['shell'] / r['bare'] for r in rows])}x (target <= 1.03)")
        if "verdict" in only:
            results.append(f"time-to-verdict {spread([r['isotest']['verdict'] / r['bare'] for r in rows])}x (target <= 1.10)")
            results.append(f"bare boot to a ready guest (start-up over, sshd answering) {spread([r['ready'] / r['bare'] for r in rows])}x "
                           f"of its boot-to-shell; time-to-verdict over it {spread([r['isotest']['verdict'] / r['ready'] for r in rows])}x")
            # Free of how the two boots compare: each side's time after its own shell.
            after = [r["isotest"]["verdict"] - r["isotest"]["shell"] for r in rows]
            ready_after = [r["ready"] - r["bare"] for r in rows]
            results.append(f"after the shell: isotest to its verdict {spread(after)} s (of it, console exchanges "
                           f"{spread([r['isotest']['console'] for r in rows])} s), bare to a ready guest "
                           f"{spread(ready_after)} s; the difference {spread([i - b for i, b in zip(after, ready_after)])} s "
                           f"(target <= 1: the verdict within 1 s of a ready guest)")
            results.append(f"process wall {spread([r['isotest']['wall'] / r['bare'] for r in rows])}x")
        if "menu" in only:
            pairs = [r for r in rows if r["isotest"]["loading"] is not None]
            if pairs:
                results.append(f"to the kernel, serial entry at once vs waiting out the menu {spread([r['isotest']['loading'] / r['bare_wait'] for r in pairs])}x "
                               f"({spread([r['isotest']['loading'] for r in pairs], '{:.1f}')} s vs {spread([r['bare_wait'] for r in pairs], '{:.1f}')} s; target < 1)")
            else:
                results.append("menu: isotest's console never showed `Loading /boot/bzImage`")
        if "rss" in only:
            rss = [r["isotest"]["rss"] / 1024 for r in rows if r["isotest"]["rss"]]
            results.append(f"harness peak RSS per trial {spread(rss, '{:.1f}')} MiB (target <= 50)")

    if "throughput" in only:
        combos = list(itertools.product([int(j) for j in a.jobs.split(",")], [int(c) for c in a.cpus.split(",")]))
        # None: no --jobs or --cpus, so isotest sizes the run by its own rule
        # (run::default_jobs, run::guest_cpus), not by a copy of it here.
        runs = [*combos, None]
        walls = {c: [] for c in runs}
        default_cpus = set()
        with tempfile.TemporaryDirectory(prefix="isotest-bench-") as d:
            scenario = throughput_scenario(iso, d, a.throughput_trials)
            for round_ in range(a.throughput_rounds):
                for combo in (runs if round_ % 2 == 0 else runs[::-1]):
                    flags = ["--jobs", str(combo[0]), "--cpus", str(combo[1])] if combo else []
                    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as art:
                        wall, _, _ = isotest([scenario, "--fresh-boot", *flags], art, env)
                        if combo is None:
                            default_cpus |= guest_cpus(art)
                    walls[combo].append(wall)
                    said = " ".join(flags) or "isotest's defaults"
                    log(f"throughput round {round_ + 1}: {a.throughput_trials} trials, {said}: {wall:.1f} s")
        medians = {c: statistics.median(w) for c, w in walls.items()}
        best = min(combos, key=medians.get)
        table = ", ".join(f"jobs {j} cpus {c} {spread(walls[(j, c)], '{:.0f}')} s" for j, c in combos)
        table += f", isotest's defaults {spread(walls[None], '{:.0f}')} s"
        cpus = "/".join(str(c) for c in sorted(default_cpus)) or "?"
        verdict = (f"defaults (cpus {cpus}) / best (jobs {best[0]}, cpus {best[1]}) "
                   f"{medians[None] / medians[best]:.2f}x (target <= 1.05)")
        results.append(f"throughput {a.throughput_trials} trials: {table}; {verdict}")

    if "shared" in only:
        results.extend(shared_boots(iso, env, a.shared_scenarios, a.shared_rounds, log))

    if "labgrid" in only:
        results.extend(labgrid_side_by_side(iso, env, a.pairs, log))

    pairs = f", {a.pairs} pair(s)" if only & {"shell", "verdict", "menu", "rss"} else ""
    header = f"{time.strftime('%Y-%m-%d')} {os.cpu_count()} cores, TCG{pairs}, trial {a.trial}"
    print(header)
    for line in results:
        print(f"  {line}")
    if not a.no_record:
        with open(os.path.join(repo, "bench", "RESULTS.md"), "a") as f:
            f.write(f"- {header}: " + "; ".join(results) + "\n")


if __name__ == "__main__":
    main()
