using System.Diagnostics;
namespace Compiled.Nets.Bench;

/// <summary>
/// `concurrent [seconds]`: one ConvNet instance serving batch-1 and batch-8 requests from 1, 2 and 4 threads at once
/// (each call takes a workspace of its own), as requests per second; and what taking and returning a workspace costs a
/// lone caller, next to the forward it wraps.
/// </summary>
internal static class ConcurrentBench
{
    public static int Run(string[] args)
    {
        double seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
        using var net = new ConvNetCompiled(seed: 1);
        Console.WriteLine($"ConvNet 1×28×28, {Environment.ProcessorCount} logical cores, {seconds} s per point");
        foreach (int batch in new[] { 1, 8 })
        {
            var x = new float[batch * 784];
            var rng = new Rng(3);
            for (int i = 0; i < x.Length; i++) x[i] = rng.NextFloat();
            foreach (int threads in new[] { 1, 2, 4 })
            {
                long calls = 0;
                int running = 1;
                using var start = new Barrier(threads + 1);
                var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
                {
                    var y = new float[batch * 10];
                    for (int w = 0; w < 20; w++) net.Forward(x, batch, y); // warm-up: this thread's buffers, the JIT
                    start.SignalAndWait();
                    long n = 0;
                    while (Volatile.Read(ref running) == 1) { net.Forward(x, batch, y); n++; }
                    Interlocked.Add(ref calls, n);
                })).ToList();
                workers.ForEach(w => w.Start());
                start.SignalAndWait(); // everyone warm
                var clock = Stopwatch.StartNew();
                Thread.Sleep(TimeSpan.FromSeconds(seconds));
                Volatile.Write(ref running, 0);
                workers.ForEach(w => w.Join());
                double rate = calls / clock.Elapsed.TotalSeconds;
                Console.WriteLine($"  batch {batch}, {threads} caller{(threads > 1 ? "s" : " ")}: {rate,9:F0} requests/s ({rate * batch,9:F0} samples/s)");
            }
        }

        // A lone caller's cost of the pool: one rent and return per call, against the forward itself.
        var pool = new WorkspacePool<Dummy>("bench", static (c, t) => new Dummy(c, t));
        var sw = Stopwatch.StartNew();
        const int n = 10_000_000;
        for (int i = 0; i < n; i++) pool.ReturnInference(pool.RentInference(1, 1, "Forward"));
        double ns = sw.Elapsed.TotalMilliseconds * 1e6 / n;
        var one = new float[784]; var y1 = new float[10];
        for (int i = 0; i < 200; i++) net.Forward(one, 1, y1);
        sw.Restart();
        for (int i = 0; i < 2000; i++) net.Forward(one, 1, y1);
        double us = sw.Elapsed.TotalMilliseconds * 1e3 / 2000;
        Console.WriteLine($"  a lone caller: workspace rent + return {ns:F1} ns per call; batch-1 forward {us:F1} µs ({ns / (us * 1e3):P3} of it)");
        return 0;
    }

    private sealed class Dummy(int capacity, bool training) : IWorkspace
    {
        public int Capacity { get; } = capacity;
        public bool ForTraining { get; } = training;
        public void Dispose() { }
    }
}
