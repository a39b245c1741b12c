using System.Linq;
using Compiled.Nets.Generator.Ops;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>The network's workspace layout (from the plan) and its pool of runtime <c>NetworkWorkspace</c>s.</summary>
    internal static partial class CpuEmitter
    {
        private const string Workspace = Runtime + "NetworkWorkspace";

        /// <summary>
        /// The memory plan as members: exact bytes of the parameter store, gradients and optimizer state, and of the
        /// workspace a call allocates (with the runtime's kernel scratch), their figures at batch 1 and MaxBatch in the
        /// XML docs, so an IDE's hover shows them before anything runs.
        /// </summary>
        private static void EmitMemoryFigures(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var m = MemoryPlan.Of(s, c.Plan);
            string Mib(long bytes) => MemoryPlan.MiB(bytes);
            int max = s.MaxBatch;
            string optimizer = Runtime + "OptimizerKind";
            w.Line($"/// <summary>Bytes of the trainable parameters: {m.ParameterFloats.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} floats (each tensor aligned to 64 bytes), {Mib(4 * m.ParameterFloats)}.</summary>");
            w.Line($"public const long ParameterBytes = {4 * m.ParameterFloats}L;");
            w.Line($"/// <summary>Bytes of the buffers (BatchNorm's running statistics): {Mib(4 * m.BufferFloats)}.</summary>");
            w.Line($"public const long BufferBytes = {4 * m.BufferFloats}L;");
            w.Line($"/// <summary>Bytes of the parameters' gradients while training: {Mib(4 * m.ParameterFloats)}.</summary>");
            w.Line($"public const long GradientBytes = {4 * m.ParameterFloats}L;");
            w.Line($"/// <summary>Bytes of an optimizer's state: SGD none, SGD with momentum {Mib(4 * m.ParameterFloats)}, Adam and AdamW {Mib(8 * m.ParameterFloats)}.</summary>");
            w.Line($"public static long OptimizerStateBytes({optimizer} optimizer) => optimizer switch {{ {optimizer}.Sgd => 0L, {optimizer}.SgdMomentum => GradientBytes, _ => 2 * GradientBytes }};");
            w.Line($"/// <summary>Bytes of the workspace a call at <paramref name=\"batch\"/> allocates (activations, for training their gradients, integers, statistics, kernel scratch; laid out for T = MaxSequence where there is a sequence).");
            w.Line($"/// Training keeps room for {max} samples: at batch 1 to {max} {Mib(m.WorkspaceBytes(1, true))}; inference at batch 1 {Mib(m.WorkspaceBytes(1, false))}, at batch {max} {Mib(m.WorkspaceBytes(max, false))} (each plus the kernels' scratch).</summary>");
            w.Line($"public static long WorkspaceBytes(int batch, bool training = true) => s_workspace.Bytes({Runtime}WorkspaceCapacity.For(batch, InitialCapacity, training), training);");
            w.Line($"/// <summary>Everything a training step at <paramref name=\"batch\"/> holds: parameters, buffers, gradients, the optimizer's state and the workspace.");
            w.Line($"/// At batch {max} with AdamW: {Mib(m.TotalBytes(max, 3, true))} ({m.Parts(max, 3, true)}; plus kernel scratch and <see cref=\"KernelCacheBytes\"/>).</summary>");
            w.Line($"public static long TrainingBytes(int batch, {optimizer} optimizer = {optimizer}.AdamW) => ParameterBytes + BufferBytes + GradientBytes + OptimizerStateBytes(optimizer) + WorkspaceBytes(batch, training: true);");
            var caches = s.Ops.Select(o => OpTable.Of(o.Kind).CacheBytes(o)).Where(x => x is not null).ToList();
            w.Line("/// <summary>Bytes this instance's kernels keep between calls, filled on first use: the Winograd convolutions' transformed filters (on AVX-512 CPUs), which the build cannot size.</summary>");
            w.Line($"public long KernelCacheBytes => {(caches.Count == 0 ? "0L" : string.Join(" + ", caches))};");
            w.Line();
        }

        private static void EmitWorkspace(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var plan = c.Plan;
            int ints = plan.IntRegions.Sum(r => r.PerSample), stats = plan.Stats.Sum(r => r.Size);
            var scratchSizes = s.Ops.Select(o => OpTable.Of(o.Kind).ScratchSize(s, o)).Where(x => x is not null).Distinct().ToList();
            string scratch = scratchSizes.Count == 0 ? "1" : string.Join(", ", scratchSizes);
            string scratchSize = scratchSizes.Count <= 1 ? scratch : $"global::System.Linq.Enumerable.Max(new long[] {{ {scratch} }})";
            w.Line("// The plan's arena layout: floats per sample of activations and of their gradients, ints per sample, statistics, scratch.");
            w.Line($"private static readonly {Runtime}WorkspaceLayout s_workspace = new(\"{s.TypeName}\", activations: {plan.ActivationTotal}, gradients: {plan.GradientTotal}, ints: {ints}, stats: {stats}, scratch: {scratchSize});");
            w.Line("// One workspace per concurrent call (one in all for a single caller); TrainStep keeps the instance to itself.");
            w.Line("// Room for DefaultCapacity samples up front (fewer when that would not fit one arena), more only when a batch needs it.");
            w.Line("private static int InitialCapacity => global::System.Math.Min(DefaultCapacity, MaxWorkspaceBatch);");
            w.Line($"private readonly {Runtime}WorkspacePool<{Workspace}> _workspaces = new(\"{s.TypeName}\", static (capacity, forTraining) => new {Workspace}(s_workspace, capacity, forTraining));");
            w.Line($"/// <summary>The largest batch one workspace can hold (its activation and gradient arenas are each at most 2^31 floats).</summary>");
            w.Line("public static int MaxWorkspaceBatch => s_workspace.MaxBatch;");
            w.Line();
            EmitMemoryFigures(c);
            w.Line("/// <summary>Frees the workspace (and the parameters when this network owns them).</summary>");
            w.Open("public void Dispose()");
            w.Line("_workspaces.Dispose();");
            w.Line("if (_ownsStore) _store.Dispose();");
            w.Close();
        }
    }
}
