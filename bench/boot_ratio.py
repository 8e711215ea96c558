#!/usr/bin/env python3
"""Harness overhead, as a ratio from one run on one machine.

Boots the rescue fixture ISO twice, one after the other, with the same QEMU
machine (q35, TCG, -cpu qemu64, 1 GiB, 2 vCPUs):
  bare:    QEMU driven by this script alone: Esc at the isolinux menu, type
           `boot-serial`, wait for the autologin shell to answer a probe.
  isotest: `isotest run scenarios/rescue.yaml` on the same ISO (KVM probe,
           boot, settle, checks, steps, report).
Prints boot-to-shell and time-to-verdict of isotest relative to the bare boot,
and appends a line to bench/RESULTS.md. Absolute times vary from machine to
machine; the ratios are what to compare.
"""
import json, os, select, socket, subprocess, sys, tempfile, time

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bare_boot(iso):
    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as d:
        sock = os.path.join(d, "serial.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(sock)
        listener.listen(1)
        qemu = subprocess.Popen([
            "qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "qemu64", "-m", "1024M", "-smp", "2",
            "-drive", f"file={iso},media=cdrom,readonly=on,format=raw",
            "-chardev", f"socket,id=s0,path={sock}", "-serial", "chardev:s0",
            "-display", "none", "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile=",
            "-no-reboot"])
        try:
            conn, _ = listener.accept()
            start = time.monotonic()
            buf, state = b"", "menu"
            while time.monotonic() - start < 600:
                ready, _, _ = select.select([conn], [], [], 5)
                if ready:
                    data = conn.recv(4096)
                    if not data:
                        raise SystemExit("QEMU closed the console")
                    buf += data
                if state == "menu" and b"Press [Tab]" in buf:
                    conn.sendall(b"\x1b"); state = "prompt"; buf = b""
                elif state == "prompt" and b"boot:" in buf:
                    conn.sendall(b"boot-serial\r"); state = "login"; buf = b""
                elif state == "login" and b"login:" in buf:
                    conn.sendall(b"echo BENCH_$((6*7))\r"); state = "shell"
                elif state == "shell":
                    if b"BENCH_42" in buf:
                        return time.monotonic() - start
                    if not ready:
                        conn.sendall(b"echo BENCH_$((6*7))\r")
            raise SystemExit("bare boot: no shell within 600 s")
        finally:
            qemu.kill(); qemu.wait()


def isotest_boot(iso):
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "isotest"], cwd=repo, check=True)
    with tempfile.TemporaryDirectory(prefix="isotest-bench-") as d:
        start = time.monotonic()
        subprocess.run([os.path.join(repo, "target/release/isotest"), "run", "scenarios/rescue.yaml",
                        "--image", iso, "--artifacts", d, "--accel", "tcg"], cwd=repo, check=True,
                       env=dict(os.environ, RESCUE_PASSWORD="nixos-rescue"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.monotonic() - start
        report = json.load(open(os.path.join(d, "rescue-x86_64-bios", "report.json")))
        phases = dict(report["phases"])
        return phases["shell"], report["total_secs"], wall


def main():
    iso = subprocess.run([os.path.join(repo, "fixtures/build-iso"), "rescue"], check=True,
                         capture_output=True, text=True).stdout.strip()
    bare = bare_boot(iso)
    shell, verdict, wall = isotest_boot(iso)
    line = (f"{time.strftime('%Y-%m-%d')} {os.uname().nodename} {os.cpu_count()} cores, TCG: "
            f"bare boot-to-shell {bare:.1f} s; isotest boot-to-shell {shell / bare:.2f}x, "
            f"time-to-verdict {verdict / bare:.2f}x, process wall {wall / bare:.2f}x")
    print(line)
    with open(os.path.join(repo, "bench", "RESULTS.md"), "a") as f:
        f.write(f"- {line}\n")


if __name__ == "__main__":
    main()
