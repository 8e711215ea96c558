#!/usr/bin/env python3
"""The hostname-only scenario as a labgrid user would write it, for
boot_ratio.py's `labgrid` section: labgrid's QEMUDriver starts the bench's
machine (q35, TCG, -cpu qemu64, 1 GiB, 2 vCPUs, the ISO as a CD-ROM, a virtio
NIC on user networking, -no-reboot), the script picks the serial entry at the
isolinux prompt as the bare boot does (Esc, `boot-serial`), labgrid's
ShellDriver waits for the autologin shell, and `cat /proc/sys/kernel/hostname`
must say `rescue`. Run with a Python that has labgrid; prints the hostname and
exits 0 when it matches, 1 otherwise.

Usage: labgrid_hostname.py ISO
"""
import os
import sys
import tempfile

from labgrid import Environment

ENV = """\
targets:
  main:
    drivers:
      QEMUDriver:
        qemu_bin: qemu
        machine: q35,accel=tcg
        cpu: qemu64
        memory: 1024M
        extra_args: "-smp 2 -drive file={iso},media=cdrom,readonly=on,format=raw -no-reboot"
        display: fb-headless
        nic: user,model=virtio-net-pci
      ShellDriver:
        # The fixture's root prompt on its serial console, `root@rescue:~# `,
        # after bash's bracketed-paste switch (labgrid looks for the prompt
        # right after its marker and white space).
        prompt: '(\\x1b\\[\\?2004h)?root@rescue:[^\\r\\n]*# '
        login_prompt: ' login: '
        username: root
        login_timeout: 600
tools:
  qemu: /usr/bin/qemu-system-x86_64
"""


def main():
    iso = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="isotest-bench-labgrid-") as d:
        config = os.path.join(d, "env.yaml")
        with open(config, "w") as f:
            f.write(ENV.format(iso=iso))
        target = Environment(config).get_target("main")
        qemu = target.get_driver("QEMUDriver")
        try:
            qemu.on()
            qemu.expect("Press \\[Tab\\]", timeout=120)
            qemu.write(b"\x1b")
            qemu.expect("boot:", timeout=60)
            qemu.sendline("boot-serial")
            shell = target.get_driver("ShellDriver")
            hostname = shell.run_check("cat /proc/sys/kernel/hostname")
        finally:
            target.deactivate_all_drivers()
    print(" ".join(hostname))
    return 0 if hostname == ["rescue"] else 1


if __name__ == "__main__":
    sys.exit(main())
