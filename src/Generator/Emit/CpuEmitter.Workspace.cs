using System;
using System.Linq;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>The network's Workspace class (arenas laid out by the plan) and its pool.</summary>
    internal static partial class CpuEmitter
    {
        private static void EmitWorkspace(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var plan = c.Plan;
            int ints = plan.IntRegions.Sum(r => r.PerSample), stats = plan.Stats.Sum(r => r.Size);
            var scratchSizes = s.Ops.Select(o => OpTable.Of(o.Kind).ScratchSize(s, o)).Where(x => x is not null).Distinct().ToList();
            string scratch = scratchSizes.Count == 0 ? "1" : string.Join(", ", scratchSizes);
            string act = plan.ActivationTotal, grad = plan.GradientTotal;
            w.Line("/// <summary>Activations, their gradients (training only) and scratch for up to Capacity samples.</summary>");
            w.Open($"private sealed class Workspace : {Runtime}IWorkspace");
            w.Line("public int Capacity { get; }");
            w.Line("public bool ForTraining { get; }");
            w.Line($"public readonly {Runtime}AlignedBuffer Act, Grad, Stats, Scratch;");
            w.Line("public readonly int[] Ints;");
            w.Open("public Workspace(int capacity, bool forTraining)");
            w.Line("Capacity = capacity;");
            w.Line("ForTraining = forTraining;");
            w.Line($"if ((long){act} * capacity > int.MaxValue || (long){grad} * capacity > int.MaxValue)");
            w.Line($"    throw new global::System.InvalidOperationException(\"{s.TypeName}: a batch of \" + capacity + \" samples needs \" + ((long){act} * capacity * 4 >> 20) + \" MiB of activations and \" + ((long){grad} * capacity * 4 >> 20) + \" MiB of their gradients, more than one workspace arena holds (2^31 floats); use batches of at most \" + MaxWorkspaceBatch + \" samples.\");");
            w.Line($"Act = new {Runtime}AlignedBuffer((long){act} * capacity);");
            w.Line($"Grad = new {Runtime}AlignedBuffer(forTraining ? (long){grad} * capacity : 0);");
            w.Line($"{Kernels}Gemm.ReserveThreadBuffers(); // this thread's GEMM packing buffers, so later steps allocate nothing");
            w.Line($"Stats = new {Runtime}AlignedBuffer({Math.Max(stats, 1)});");
            w.Line($"Scratch = new {Runtime}AlignedBuffer({(scratchSizes.Count <= 1 ? scratch : $"global::System.Linq.Enumerable.Max(new long[] {{ {scratch} }})")});");
            w.Line($"Ints = new int[{Math.Max(ints, 1)} * capacity];");
            w.Close();
            w.Line("public void Dispose() { Act.Dispose(); Grad.Dispose(); Stats.Dispose(); Scratch.Dispose(); }");
            w.Close();
            w.Line();
            w.Line("// One workspace per concurrent call (one in all for a single caller); TrainStep keeps the instance to itself.");
            w.Line("// Room for DefaultCapacity samples up front (fewer when that would not fit one arena), more only when a batch needs it.");
            w.Line("private static int InitialCapacity => global::System.Math.Min(DefaultCapacity, MaxWorkspaceBatch);");
            w.Line($"private readonly {Runtime}WorkspacePool<Workspace> _workspaces = new(\"{s.TypeName}\", static (capacity, forTraining) => new Workspace(capacity, forTraining));");
            w.Line($"/// <summary>The largest batch one workspace can hold (its activation and gradient arenas are each at most 2^31 floats).</summary>");
            w.Line($"public static int MaxWorkspaceBatch => (int)global::System.Math.Max(1L, int.MaxValue / global::System.Math.Max(1L, global::System.Math.Max((long){act}, (long){grad})));");
            w.Line();
            w.Line("/// <summary>Frees the workspace (and the parameters when this network owns them).</summary>");
            w.Open("public void Dispose()");
            w.Line("_workspaces.Dispose();");
            w.Line("if (_ownsStore) _store.Dispose();");
            w.Close();
        }
    }
}
