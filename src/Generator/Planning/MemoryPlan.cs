using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text.RegularExpressions;
using Compiled.Nets.Generator.Model;

namespace Compiled.Nets.Generator.Planning
{
    /// <summary>
    /// What a network holds in memory, known at build time from its parameters and the plan's arenas: the parameter
    /// store (each tensor aligned to 16 floats, as ParameterStoreBuilder lays it out), gradients as large, the optimizer's
    /// moments, and the workspace a call allocates (activations and their gradients per sample × the capacity the
    /// workspace pool gives a batch, integers, statistics). Kernel scratch is sized by the runtime and comes on top.
    /// </summary>
    internal sealed class MemoryPlan
    {
        public long ParameterFloats { get; private set; }
        public long BufferFloats { get; private set; }
        public long ActivationsPerSample { get; private set; }
        public long GradientsPerSample { get; private set; }
        public long IntsPerSample { get; private set; }
        public long StatFloats { get; private set; }
        public int DefaultCapacity { get; private set; }
        private readonly List<(string What, long PerSample, bool Gradient)> _regions = new();

        public static MemoryPlan Of(NetworkSpec s, Plan plan)
        {
            static long Aligned(ParamSpec p) => (p.Shape.Aggregate(1L, (a, d) => a * d) + 15) / 16 * 16;
            var m = new MemoryPlan
            {
                ParameterFloats = s.Parameters.Where(p => !p.IsBuffer).Sum(Aligned),
                BufferFloats = s.Parameters.Where(p => p.IsBuffer).Sum(Aligned),
                ActivationsPerSample = plan.Regions.Sum(r => r.Max),
                GradientsPerSample = plan.Regions.Where(r => r.GradientOffset is not null).Sum(r => r.Max),
                IntsPerSample = plan.IntRegions.Sum(r => (long)r.PerSample),
                StatFloats = plan.Stats.Sum(r => (long)r.Size),
                DefaultCapacity = s.MaxBatch,
            };
            foreach (var r in plan.Regions) m._regions.Add((Describe(s, r.Name), r.Max, r.GradientOffset is not null));
            return m;
        }

        /// <summary>"Conv1's output [64, 28, 28]" for v3, "the pre-activation output of Fc1" for r7, else the region's name.</summary>
        private static string Describe(NetworkSpec s, string name)
        {
            var m = Regex.Match(name, @"^([vr])(\d+)$");
            int id = m.Success ? int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : -1;
            if (id < 0 || id >= s.Ops.Count) return $"'{name}' (kept for backward)";
            var op = s.Ops[id];
            string shape = "[" + string.Join(", ", op.OutShape.Select(Shapes.Dim)) + "]";
            return m.Groups[1].Value == "r" ? $"{op.Label}'s output before its activation {shape}" : $"{op.Label}'s output {shape}";
        }

        /// <summary>Optimizer state buffers the size of the parameters, by MemoryBudgetAttribute's OptimizerKind value.</summary>
        public static int StateBuffers(int optimizerKind) => optimizerKind switch { 0 => 0, 1 => 1, _ => 2 };

        public static string OptimizerName(int optimizerKind) => optimizerKind switch { 0 => "SGD", 1 => "SGD with momentum", 2 => "Adam", _ => "AdamW" };

        /// <summary>The largest batch one workspace arena holds (2^31 floats), as the runtime's WorkspaceLayout.MaxBatch.</summary>
        private long MaxWorkspaceBatch => Math.Max(1L, int.MaxValue / Math.Max(1L, Math.Max(ActivationsPerSample, GradientsPerSample)));

        /// <summary>The capacity the workspace pool gives a call at <paramref name="batch"/>: training keeps room for the
        /// usual batch; inference rounds up to a power of two, at most the usual batch.</summary>
        public long Capacity(int batch, bool training)
        {
            long initial = Math.Min(DefaultCapacity, MaxWorkspaceBatch);
            if (training) return Math.Max(batch, initial);
            long pow2 = 1;
            while (pow2 < batch) pow2 <<= 1;
            return Math.Max(batch, Math.Min(initial, pow2));
        }

        /// <summary>Workspace bytes at <paramref name="batch"/>, without kernel scratch.</summary>
        public long WorkspaceBytes(int batch, bool training)
        {
            long capacity = Capacity(batch, training);
            return 4 * (ActivationsPerSample * capacity + (training ? GradientsPerSample * capacity : 0) + Math.Max(StatFloats, 1) + Math.Max(IntsPerSample, 1) * capacity);
        }

        /// <summary>Everything held at <paramref name="batch"/>: the store, and for training gradients and optimizer state.</summary>
        public long TotalBytes(int batch, int optimizerKind, bool training) =>
            4 * (ParameterFloats + BufferFloats) + (training ? 4 * ParameterFloats * (1 + StateBuffers(optimizerKind)) : 0) + WorkspaceBytes(batch, training);

        public static string MiB(long bytes) => (bytes / 1048576.0).ToString(bytes < 10 * 1048576L ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " MiB";

        /// <summary>The parts of <see cref="TotalBytes"/>, each in MiB.</summary>
        public string Parts(int batch, int optimizerKind, bool training)
        {
            long capacity = Capacity(batch, training);
            var parts = new List<string> { $"parameters {MiB(4 * ParameterFloats)}" };
            if (BufferFloats > 0) parts.Add($"buffers {MiB(4 * BufferFloats)}");
            if (training)
            {
                parts.Add($"gradients {MiB(4 * ParameterFloats)}");
                if (StateBuffers(optimizerKind) > 0) parts.Add($"{OptimizerName(optimizerKind)} state {MiB(4 * ParameterFloats * StateBuffers(optimizerKind))}");
            }
            parts.Add($"activations {MiB(4 * ActivationsPerSample * capacity)}");
            if (training) parts.Add($"their gradients {MiB(4 * GradientsPerSample * capacity)}");
            if (IntsPerSample > 0) parts.Add($"max-pool indices {MiB(4 * IntsPerSample * capacity)}");
            return string.Join(", ", parts);
        }

        /// <summary>The <paramref name="count"/> largest workspace regions at <paramref name="batch"/> (their gradients included when training).</summary>
        public string Largest(int batch, bool training, int count = 3)
        {
            long capacity = Capacity(batch, training);
            return string.Join("; ", _regions.Select(r => (What: r.What + (training && r.Gradient ? " with its gradient" : ""), Bytes: 4 * r.PerSample * capacity * (training && r.Gradient ? 2 : 1)))
                .OrderByDescending(r => r.Bytes).Take(count).Select(r => $"{r.What} {MiB(r.Bytes)}"));
        }
    }
}
