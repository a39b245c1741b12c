"""Time from process start to a command's first line of output (the classifier prints its first prediction first),
measured from outside the process: spawn, read one line, stop it. Several commands are alternated round by round,
since this VM's speed drifts.

    python3 bench/first-prediction.py ROUNDS -- CMD1 ARGS... [-- CMD2 ARGS...]
"""
import statistics
import subprocess
import sys
import time


def first_line_ms(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.readline()
    elapsed = (time.perf_counter() - t0) * 1000
    p.kill()
    p.wait()
    return elapsed


def main():
    rounds = int(sys.argv[1])
    commands, current = [], None
    for arg in sys.argv[2:]:
        if arg == "--":
            current = []
            commands.append(current)
        else:
            current.append(arg)
    times = [[] for _ in commands]
    for _ in range(rounds):
        for i, cmd in enumerate(commands):
            times[i].append(first_line_ms(cmd))
    for cmd, t in zip(commands, times):
        t.sort()
        print(f"{' '.join(cmd)[:90]}: median {statistics.median(t):.1f} ms (min {t[0]:.1f}, max {t[-1]:.1f}) over {len(t)}")


if __name__ == "__main__":
    main()
