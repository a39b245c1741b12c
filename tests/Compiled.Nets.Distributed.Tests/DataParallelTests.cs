using System.Diagnostics;
using System.Globalization;

namespace Compiled.Nets.Distributed.Tests;

/// <summary>
/// Two ranks under Open MPI's mpirun against one process: the same global batches, the same AdamW steps, the same
/// losses and weights; and a rank that throws or is killed ends the job within seconds instead of hanging it.
/// </summary>
public class DataParallelTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static string WorkerDll => Path.Combine(AppContext.BaseDirectory, "Compiled.Nets.Distributed.Tests.dll");

    private (int ExitCode, string Output, double Seconds) MpiRun(int ranks, params string[] args)
    {
        Mpi.EnsureInstalled();
        var start = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(CultureInfo.InvariantCulture),
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", WorkerDll }.Concat(args))
            start.ArgumentList.Add(a);
        // One kernel thread per rank: two ranks share this machine's cores.
        start.Environment["DOTNET_PROCESSOR_COUNT"] = "1";
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"mpirun {string.Join(' ', args)} did not end within 120 s (a hang).");
        }
        string text = stdout.Result + stderr.Result;
        output.WriteLine($"mpirun -np {ranks} {string.Join(' ', args)}: exit {p.ExitCode} after {clock.Elapsed.TotalSeconds:F1} s");
        return (p.ExitCode, text, clock.Elapsed.TotalSeconds);
    }

    private static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "cnet-mpi-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>The largest relative loss difference over all steps and over the first five.</summary>
    private static (double All, double Early) LossDrift(double[] losses, double[] reference)
    {
        double all = 0, early = 0;
        for (int s = 0; s < reference.Length; s++)
        {
            double d = Math.Abs(losses[s] - reference[s]) / Math.Abs(reference[s]);
            all = Math.Max(all, d);
            if (s < 5) early = Math.Max(early, d);
        }
        return (all, early);
    }

    /// <summary>How far two final weight vectors are apart, relative to how far training moved them: ‖w − w₁‖ / ‖w₁ − w₀‖.</summary>
    private static double WeightDrift(float[] weights, float[] reference, float[] initial)
    {
        double diff = 0, moved = 0;
        for (int i = 0; i < weights.Length; i++) { diff += Math.Pow(weights[i] - reference[i], 2); moved += Math.Pow(reference[i] - initial[i], 2); }
        return Math.Sqrt(diff / moved);
    }

    [Theory]
    [InlineData("convnet", 20, 64)]
    [InlineData("convnet", 6, 33)]   // an odd global batch: ranks take 16 and 17 samples, weighted by their share
    [InlineData("minibert", 20, 16)]
    [InlineData("minibert-frozen", 20, 16)]   // embeddings and the first attention frozen
    public void TwoRanks_TrainAsOneProcessOnTheGlobalBatch(string scenario, int steps, int globalBatch)
    {
        string dir = TempDir();
        try
        {
            var run = MpiRun(2, scenario, dir, steps.ToString(CultureInfo.InvariantCulture), globalBatch.ToString(CultureInfo.InvariantCulture));
            Assert.True(run.ExitCode == 0, run.Output);
            var losses = File.ReadAllLines(Path.Combine(dir, "losses.txt")).Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();
            var weights = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(Path.Combine(dir, "weights.bin"))).ToArray();

            var (refLosses, refWeights, initial) = Worker.Run(scenario, null, steps, globalBatch);
            Assert.Equal(steps, losses.Length);
            // Two ranks add their parts of each batch's gradient where one process adds all of it: the same sum in
            // another order. Float rounding of that order is all that may differ, and AdamW, which normalises every
            // coordinate, carries it on over the steps. The yardstick: the same regrouping in one process (the two
            // parts one after the other, combined as the allreduce combines them) drifts from the whole batch as far.
            var (halfLosses, halfWeights, _) = Worker.Run(scenario, null, steps, globalBatch, halves: true);
            var (lossDrift, earlyDrift) = LossDrift(losses, refLosses);
            var (halfDrift, _) = LossDrift(halfLosses, refLosses);
            double weightDrift = WeightDrift(weights, refWeights, initial), halfWeightDrift = WeightDrift(halfWeights, refWeights, initial);
            output.WriteLine($"{scenario}: {steps} steps of {globalBatch}; losses {refLosses[0]:F4} → {refLosses[^1]:F4}; relative loss difference ≤ {earlyDrift:E2} in the first 5 steps, " +
                $"≤ {lossDrift:E2} in all (one process in two parts: {halfDrift:E2}); ‖w₂ − w₁‖ / ‖w₁ − w₀‖ = {weightDrift:E2} (in two parts: {halfWeightDrift:E2})");
            Assert.Equal(refWeights.Length, weights.Length);
            Assert.True(earlyDrift < 1e-5, $"the first steps' losses differ by {earlyDrift:E2} (relative)");
            Assert.True(lossDrift <= Math.Max(1e-5, 10 * halfDrift), $"losses differ by {lossDrift:E2}; regrouped in one process by {halfDrift:E2}");
            Assert.True(weightDrift <= Math.Max(1e-4, 10 * halfWeightDrift), $"the weights differ by {weightDrift:E2} of how far training moved them; regrouped in one process by {halfWeightDrift:E2}");
            Assert.True(refLosses[^1] < refLosses[0], "the reference run trains");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static float[] Floats(string file) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(file)).ToArray();

    private static double[] Doubles(string file) => File.ReadAllLines(file).Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    public void TheTrainer_OnTwoRanks_MatchesOneProcess_AndRankZeroWritesTheCheckpoints()
    {
        // 300 samples in global batches of 64 (the last of 44: 22 per rank), 70 validation samples, 2 epochs.
        string dir = TempDir(), single = TempDir();
        try
        {
            var run = MpiRun(2, "trainer", dir, "2", "64");
            Assert.True(run.ExitCode == 0, run.Output);
            var metrics = Doubles(Path.Combine(dir, "losses.txt"));
            var weights = Floats(Path.Combine(dir, "weights.bin"));
            Assert.True(File.Exists(Path.Combine(dir, "run", "last.safetensors")));
            Assert.True(File.Exists(Path.Combine(dir, "run", "history.csv")));

            Worker.OutputDirectory = single;
            var (refMetrics, refWeights, initial) = Worker.Run("trainer", null, 2, 64);
            Assert.Equal(refMetrics.Length, metrics.Length);
            for (int i = 0; i < metrics.Length; i++)
                Assert.True(Math.Abs(metrics[i] - refMetrics[i]) <= 1e-4 * Math.Max(1, Math.Abs(refMetrics[i])), $"metric {i} (epoch {i / 4 + 1}): one process {refMetrics[i]}, two ranks {metrics[i]}");
            double diff = 0, moved = 0;
            for (int i = 0; i < weights.Length; i++) { diff += Math.Pow(weights[i] - refWeights[i], 2); moved += Math.Pow(refWeights[i] - initial[i], 2); }
            output.WriteLine($"trainer: metrics {string.Join(", ", refMetrics.Select(m => m.ToString("F4", CultureInfo.InvariantCulture)))}; ‖w₂ − w₁‖ / ‖w₁ − w₀‖ = {Math.Sqrt(diff / moved):E2}");
            Assert.True(Math.Sqrt(diff / moved) < 1e-2);
            Assert.True(refMetrics[^2] > 0.5, "the network learns the task (validation accuracy)");
        }
        finally { Directory.Delete(dir, recursive: true); Directory.Delete(single, recursive: true); }
    }

    [Fact]
    public void DeviceTwins_OnTwoRanks_TrainAsOneProcess()
    {
        // 160 samples in global batches of 32 (16 per rank), 40 validation samples, 3 epochs, each rank a device twin
        // whose gradients go through the host store for the allreduce.
        string dir = TempDir();
        try
        {
            var run = MpiRun(2, "device-trainer", dir, "3", "32");
            Assert.True(run.ExitCode == 0, run.Output);
            var metrics = Doubles(Path.Combine(dir, "losses.txt"));
            var weights = Floats(Path.Combine(dir, "weights.bin"));
            var (refMetrics, refWeights, initial) = Worker.Run("device-trainer", null, 3, 32);
            Assert.Equal(refMetrics.Length, metrics.Length);
            for (int i = 0; i < metrics.Length; i++)
                Assert.True(Math.Abs(metrics[i] - refMetrics[i]) <= 1e-4 * Math.Max(1, Math.Abs(refMetrics[i])), $"metric {i} (epoch {i / 4 + 1}): one process {refMetrics[i]}, two ranks {metrics[i]}");
            double drift = WeightDrift(weights, refWeights, initial);
            output.WriteLine($"device-trainer: metrics {string.Join(", ", refMetrics.Select(m => m.ToString("F4", CultureInfo.InvariantCulture)))}; ‖w₂ − w₁‖ / ‖w₁ − w₀‖ = {drift:E2}");
            Assert.True(drift < 1e-3, $"the weights differ by {drift:E2} of how far training moved them");
            Assert.True(refMetrics[^1] > 0.7, "the network learns the task (validation accuracy)");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void ADistributedRunResumedFromItsCheckpoint_EqualsAnUninterruptedOne()
    {
        string whole = TempDir(), resumed = TempDir();
        try
        {
            Assert.Equal(0, MpiRun(2, "trainer", whole, "2", "64").ExitCode);
            Assert.Equal(0, MpiRun(2, "trainer", resumed, "1", "64").ExitCode);
            var run = MpiRun(2, "trainer-resume", resumed, "2", "64");
            Assert.True(run.ExitCode == 0, run.Output);
            Assert.Equal(Floats(Path.Combine(whole, "weights.bin")), Floats(Path.Combine(resumed, "weights.bin")));
            // The resumed run trained epoch 2 only: its metrics are the uninterrupted run's second epoch.
            Assert.Equal(Doubles(Path.Combine(whole, "losses.txt"))[4..], Doubles(Path.Combine(resumed, "losses.txt")));
        }
        finally { Directory.Delete(whole, recursive: true); Directory.Delete(resumed, recursive: true); }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ARankThatThrowsOrIsKilled_EndsTheJobWithinSeconds(bool kill)
    {
        string dir = TempDir();
        try
        {
            var run = MpiRun(2, ["convnet", dir, "20", "64", "3", kill ? "kill" : "throw"]);
            Assert.NotEqual(0, run.ExitCode);
            Assert.True(run.Seconds < 60, $"the job took {run.Seconds:F0} s to end");
            if (!kill)
            {
                Assert.Contains("rank 1 fails at step 3", run.Output);
                Assert.Contains("aborting the MPI job", run.Output);
            }
            Assert.False(File.Exists(Path.Combine(dir, "weights.bin")), "rank 0 must not finish as if nothing happened");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void OutsideMpirun_InitializeSaysHowToStartTheJob()
    {
        Assert.False(DistributedContext.IsLaunchedByMpi);
        var ex = Assert.Throws<InvalidOperationException>(DistributedContext.Initialize);
        Assert.Contains("mpirun -np 2", ex.Message);
    }

    [Theory]
    [InlineData(64, 2)]
    [InlineData(33, 2)]
    [InlineData(5, 8)]   // more ranks than samples: some take none
    public void Shards_CoverTheGlobalBatchInRankOrder(int count, int ranks)
    {
        int next = 0;
        for (int r = 0; r < ranks; r++)
        {
            var (start, n) = DataParallel.Shard(count, r, ranks);
            Assert.Equal(next, start);
            Assert.InRange(n, count / ranks, count / ranks + 1);
            next += n;
        }
        Assert.Equal(count, next);
    }
}

/// <summary>Open MPI for these tests: installed from Debian's packages when it is missing and this user may install.</summary>
internal static class Mpi
{
    private static readonly Lazy<string?> s_missing = new(Install);

    public static void EnsureInstalled()
    {
        if (s_missing.Value is { } why) Assert.Fail(why);
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));

    private static string? Install()
    {
        if (OnPath("mpirun")) return null;
        if (!OnPath("apt-get") || Environment.UserName != "root")
            return "mpirun was not found: install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin); .ci/run does.";
        var p = Process.Start(new ProcessStartInfo("apt-get", "install -y --no-install-recommends openmpi-bin") { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string log = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 && OnPath("mpirun") ? null : "Installing openmpi-bin failed:\n" + log;
    }
}
