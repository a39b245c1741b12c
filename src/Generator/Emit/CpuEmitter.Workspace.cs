using System.Linq;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>The network's workspace layout (from the plan) and its pool of runtime <c>NetworkWorkspace</c>s.</summary>
    internal static partial class CpuEmitter
    {
        private const string Workspace = Runtime + "NetworkWorkspace";

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
            w.Line("/// <summary>Frees the workspace (and the parameters when this network owns them).</summary>");
            w.Open("public void Dispose()");
            w.Line("_workspaces.Dispose();");
            w.Line("if (_ownsStore) _store.Dispose();");
            w.Close();
        }
    }
}
