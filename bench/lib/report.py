#!/usr/bin/env python3
"""Writes bench/run.sh's results as a Markdown table and two PNG plots.

  report.py --results results.tsv --meta meta.tsv --latency-dir DIR --out DIR --configs "veth ..."

results.tsv: CONFIG <TAB> METRIC <TAB> VALUE (empty = not measured) <TAB> NOTE
meta.tsv:    KEY <TAB> VALUE (date, kernel, cpu, versions, settings)
DIR/latency-CONFIG.txt: one request/response latency (µs) a line

Writes OUT/<date>.md, OUT/<date>-throughput.png, OUT/<date>-latency.png and
OUT/latest.md (the same table, linking the same plots). Plots need gnuplot.
"""
import argparse
import math
import os
import shutil
import subprocess
import sys

CONFIG_TITLES = {
    "veth": "raw veth",
    "buckwild-stream": "Buckwild stream",
    "buckwild-packet": "Buckwild packet",
    "wireguard-go": "wireguard-go",
    "openvpn": "OpenVPN",
    "kcptun": "kcptun fast3",
}
# metric, label, decimals, lower is better
METRICS = [
    ("tput1", "TCP throughput, 1 stream (Mbit/s)", 0, False),
    ("tput4", "TCP throughput, 4 streams (Mbit/s)", 0, False),
    ("ping_ms", "ping RTT, mean (ms)", 3, True),
    ("rr_median_us", "TCP request/response, median (µs)", 0, True),
    ("rr_p99_us", "TCP request/response, p99 (µs)", 0, True),
    ("cpu_s_per_gb", "CPU time of the tunnel processes per GB moved (s)", 2, True),
    ("rss_clean_mib", "peak RSS through the clean cells, larger end (MiB)", 1, True),
    ("rss_mib", "peak RSS over the whole run, larger end (MiB)", 1, True),
    ("first_ms", "start to first packet through (ms)", 0, True),
    ("loss1", "1 stream, 1 % loss (Mbit/s)", 1, False),
    ("loss5", "1 stream, 5 % loss (Mbit/s)", 1, False),
    ("d20", "1 stream, 20 ms RTT (Mbit/s)", 1, False),
    ("d20l1", "1 stream, 20 ms RTT + 1 % loss (Mbit/s)", 1, False),
    ("d20l5", "1 stream, 20 ms RTT + 5 % loss (Mbit/s)", 1, False),
    ("d100", "1 stream, 100 ms RTT (Mbit/s)", 1, False),
    ("d100l1", "1 stream, 100 ms RTT + 1 % loss (Mbit/s)", 1, False),
    ("d20j5", "1 stream, 20 ms RTT, ±5 ms jitter each way (Mbit/s)", 1, False),
]
IMPAIRED = [("tput1", "none"), ("loss1", "1 %"), ("loss5", "5 %"), ("d20", "20 ms"),
            ("d20l1", "20 ms + 1 %"), ("d20l5", "20 ms + 5 %"), ("d100", "100 ms"),
            ("d100l1", "100 ms + 1 %"), ("d20j5", "20 ms ± 5 ms jitter")]
REFERENCE = "wireguard-go"


def read_tsv(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(line.split("\t"))
    return rows


def fmt(v, decimals):
    if decimals == 0:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{decimals}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--latency-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--configs", required=True)
    args = ap.parse_args()

    configs = [c for c in CONFIG_TITLES if c in args.configs.split()]
    values, notes = {}, {}
    for row in read_tsv(args.results):
        row += [""] * (4 - len(row))
        cfg, metric, value, note = row[:4]
        if value:
            values[(cfg, metric)] = float(value)
        if note:
            notes[(cfg, metric)] = note
    meta = {r[0]: r[1] for r in read_tsv(args.meta) if len(r) >= 2}
    date = meta.get("date", "unknown")
    stamp = date.split()[0]
    os.makedirs(args.out, exist_ok=True)

    # ---- the table: one row per figure, one column per configuration ----
    footnotes = []  # texts, numbered in order of first use

    def footnote(text):
        if text not in footnotes:
            footnotes.append(text)
        return f"[{footnotes.index(text) + 1}]"

    header = "| | " + " | ".join(CONFIG_TITLES[c] for c in configs) + " |"
    lines = [header, "|---|" + "---:|" * len(configs)]
    for metric, label, decimals, _ in METRICS:
        cells = []
        for c in configs:
            v = values.get((c, metric))
            note = notes.get((c, metric), "")
            if v is None:
                cells.append("– " + footnote(note or "not measured"))
                continue
            cell = fmt(v, decimals)
            ref = values.get((REFERENCE, metric))
            if c.startswith("buckwild") and ref:
                cell += f" ({v / ref:.2f}×)"
            if metric == "ping_ms" and note:
                cell += " " + footnote(note)
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    plot_tp = f"{stamp}-throughput.png"
    plot_lat = f"{stamp}-latency.png"
    have_plots = shutil.which("gnuplot") is not None

    md = [f"# Benchmarks, {date}", ""]
    md.append("Made by `bench/run.sh` (see bench/README.md): two network namespaces joined by a veth pair, "
              f"iperf3 ({meta.get('cc', 'cubic').upper()}) from host A to host B through each tunnel. Loss and delay are applied by "
              "`tools/impair` to the packets arriving on each end of the underlay veth (so both directions: "
              "1 % loss each way, 10 ms each way for a 20 ms RTT), GSO/TSO off on the veth in those cells. "
              f"Buckwild figures are followed by their ratio to {REFERENCE}'s (for latency, CPU and memory "
              "a ratio below 1 is better).")
    md.append("")
    md += lines
    md.append("")
    if footnotes:
        md += [f"[{i + 1}] {t}  " for i, t in enumerate(footnotes)]
        md.append("")
    md.append("## Machine and versions")
    md.append("")
    md.append("| | |")
    md.append("|---|---|")
    for key in ["date", "kernel", "cpu", "buckwild", "buckwild receive path", "wireguard-go", "wireguard-tools", "openvpn", "kcptun",
                "iperf3", "openssl", "settings", "impair", "load"]:
        if key in meta:
            md.append(f"| {key} | {meta[key]} |")
    if ("openvpn", "note") in notes:
        md.append(f"| OpenVPN | {notes[('openvpn', 'note')]}, TLS with a throwaway EC CA, UDP, no DCO |")
    if "kcptun" in configs:
        md.append("| kcptun | fast3, sndwnd/rcvwnd 2048/2048, crypt aes, FEC 10/3 (default), no compression; "
                  "carries iperf3's TCP port (no ICMP: no ping) |")
    md.append("")
    if have_plots:
        md.append(f"![Throughput by loss and delay]({plot_tp})")
        md.append("")
        md.append(f"![Request/response latency distribution]({plot_lat})")
        md.append("")

    dated = os.path.join(args.out, f"{stamp}.md")
    with open(dated, "w") as f:
        f.write("\n".join(md))
    shutil.copyfile(dated, os.path.join(args.out, "latest.md"))

    if have_plots:
        plots(args, configs, values, os.path.join(args.out, plot_tp), os.path.join(args.out, plot_lat))
    print(f"report.py: wrote {dated} and latest.md", file=sys.stderr)


def plots(args, configs, values, tp_png, lat_png):
    tmp = os.path.join(args.latency_dir, "plot")
    os.makedirs(tmp, exist_ok=True)
    # Throughput by loss: two panels (no added delay, 20 ms RTT), loss on the
    # x axis, one line per configuration, log scale shared by both panels.
    panels = [("no added delay", ["tput1", "loss1", "loss5"]), ("20 ms added RTT", ["d20", "d20l1", "d20l5"])]
    losses = [0, 1, 5]
    with open(os.path.join(tmp, "tp.dat"), "w") as f:
        for _, metrics in panels:
            for loss, metric in zip(losses, metrics):
                cols = []
                for c in configs:
                    v = values.get((c, metric))
                    cols.append(f"{v:.3f}" if v and v > 0 else "?")
                f.write(f"{loss} " + " ".join(cols) + "\n")
            f.write("\n\n")  # a gnuplot data block per panel (index 0, 1)
    measured = [values[(c, m)] for c in configs for _, ms in panels for m in ms if values.get((c, m), 0) > 0]
    lo = 10 ** math.floor(math.log10(min(measured))) if measured else 1
    hi = 10 ** math.ceil(math.log10(max(measured))) if measured else 1000
    series = [c for c in configs if any(values.get((c, m)) for _, ms in panels for m in ms)]
    script = [
        'set terminal pngcairo size 1100,520 font "DejaVu Sans,10"',
        f'set output "{tp_png}"',
        'set multiplot layout 1,2 title "iperf3 TCP, 1 stream, through each tunnel: throughput by loss on the underlay"',
        'set logscale y', f'set yrange [{lo}:{hi}]', 'set grid ytics mytics', 'set datafile missing "?"',
        'set xrange [-0.5:5.5]', 'set xtics ("0" 0, "1 %%" 1, "5 %%" 5)', 'set xlabel "loss, each way"',
        'set ylabel "Mbit/s (log scale)"', 'set key bottom left',
    ]
    for i, (title, _) in enumerate(panels):
        script.append(f'set title "{title}"')
        if series:
            parts = [f'"{tmp}/tp.dat" index {i} using 1:{configs.index(c) + 2} with linespoints lw 2 pt 7 '
                     f'title "{CONFIG_TITLES[c]}"' for c in series]
            script.append("plot " + ", ".join(parts))
        else:
            script.append("plot 1/0 title \"nothing measured\"")
        script.append("unset key")
    script.append("unset multiplot")

    # Latency: the distribution (CDF) of request/response times.
    lat_series = []
    for c in configs:
        src = os.path.join(args.latency_dir, f"latency-{c}.txt")
        if not os.path.exists(src):
            continue
        vals = sorted(float(x) for x in open(src).read().split())
        if not vals:
            continue
        dst = os.path.join(tmp, f"cdf-{c}.dat")
        with open(dst, "w") as f:
            n = len(vals)
            for i, v in enumerate(vals):
                f.write(f"{v:.1f} {100.0 * (i + 1) / n:.3f}\n")
        lat_series.append((c, dst))
    script += [
        f'set output "{lat_png}"',
        'unset logscale', 'set xtics auto', 'set autoscale x', 'set key bottom right',
        'set title "TCP request/response latency (64-byte messages, one at a time)"',
        'set xlabel "latency (µs, log scale)"', 'set ylabel "% of exchanges at or below"',
        'set logscale x', 'set yrange [0:100]', 'set grid xtics ytics mxtics',
    ]
    if lat_series:
        script.append("plot " + ", ".join(f'"{d}" using 1:2 with lines lw 2 title "{CONFIG_TITLES[c]}"'
                                          for c, d in lat_series))
    else:
        script.append('set label "no latency measured" at graph 0.4,0.5')
        script.append("plot 1/0 notitle")
    with open(os.path.join(tmp, "plots.gp"), "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run(["gnuplot", os.path.join(tmp, "plots.gp")], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        print(f"report.py: gnuplot failed: {r.stderr.strip()}", file=sys.stderr)


if __name__ == "__main__":
    main()
