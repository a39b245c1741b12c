using System.Diagnostics;
using Compiled.Nets.Distributed;

namespace Compiled.Nets.Bench;

/// <summary>
/// `allreduce` (under mpirun, e.g. `mpirun -np 2 dotnet Compiled.Nets.Bench.dll allreduce`): the gradient allreduce of
/// one data-parallel step for the seed ConvNet's and bert-base's parameter counts, as DataParallel.AverageGradients
/// runs it (one MPI_Allreduce of the flat float buffer), median of several, printed by rank 0 with the bandwidth the
/// ring-allreduce cost model implies (each rank sends and receives 2·(p−1)/p of the buffer).
/// </summary>
internal static class AllreduceBench
{
    public static int Run()
    {
        using var job = DistributedContext.Initialize();
        foreach (var (name, floats) in new[] { ("seed ConvNet", 3_291_402), ("bert-base (110M)", 109_482_240) })
        {
            var buffer = new float[floats];
            buffer.AsSpan().Fill(1f);
            int repeats = floats > 10_000_000 ? 5 : 30;
            var times = new List<double>();
            for (int r = 0; r < repeats + 2; r++)
            {
                job.Barrier();
                var clock = Stopwatch.StartNew();
                job.AllReduceSum(buffer);
                double ms = clock.Elapsed.TotalMilliseconds;
                if (r >= 2) times.Add(ms); // the first two warm the connections and the pages up
            }
            double median = times.Order().ElementAt(times.Count / 2);
            double bytes = floats * 4.0, moved = 2.0 * (job.Size - 1) / job.Size * bytes;
            if (job.IsRoot)
                Console.WriteLine($"{name}: {floats:N0} floats ({bytes / 1e6:F1} MB), {job.Size} ranks: allreduce median {median:F1} ms " +
                    $"(min {times.Min():F1}, max {times.Max():F1}); {moved / 1e6:F1} MB sent per rank ⇒ {moved / (median / 1e3) / 1e9:F2} GB/s");
        }
        return 0;
    }
}
