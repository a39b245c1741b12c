using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>Fused chains: a layer's bias and elementwise ops as one vector loop forward, and one backward.</summary>
    internal static partial class CpuEmitter
    {
        /// <summary>
        /// A chain's vector loop in both widths: Vector512 where the CPU has AVX-512, else Vector256 (without it Vector512
        /// is emulated in software, about five times slower than Vector256). The JIT keeps only the branch this CPU
        /// takes. <paramref name="loop"/> writes the Vector512 loop; the Vector256 one is the same text at half the step.
        /// </summary>
        private const string WideLoop = "for (; i <= end - 16; i += 16, j += 16)", NarrowLoop = "for (; i <= end - 8; i += 8, j += 8)";

        private static void EmitBothWidths(SourceWriter w, System.Action<SourceWriter> loop)
        {
            var wide = new SourceWriter();
            loop(wide);
            string text = wide.ToString();
            w.Open($"if ({Vector512}.IsHardwareAccelerated)");
            w.Paste(text);
            w.Close();
            w.Open("else");
            w.Paste(text.Replace(Vector512, Vector256).Replace(WideLoop, NarrowLoop));
            w.Close();
        }

        /// <summary>Loop geometry of a chain: rows × cols, and how the bias (if any) is indexed.</summary>
        private static (string Rows, string Cols, int BiasChannels, bool ColumnBias) ChainShape(CpuContext c, PlanUnit u)
        {
            var shape = c.Spec.Ops[u.Source].OutShape;
            if (u.Primary is { } op && u.StartsWithBias)
            {
                // A convolution's bias is per channel (rows of H·W); a Linear's per column.
                if (OpTable.Of(op.Kind).BiasPerChannel) return ($"batch * {shape[0]}", IntLiteral(Shapes.Product(shape.Skip(1))), shape[0], false);
                return (c.Rows(op), Shapes.Dim(shape[shape.Count - 1]), 0, true);
            }
            return ("batch", Shapes.Size(shape), 0, false);
        }

        /// <summary>Whether stage <paramref name="j"/>'s value is written to memory: the chain's result always; in
        /// training also what backward reads (an output-gradient op's value, or the input of an input-gradient op).</summary>
        private static bool Stored(PlanUnit u, int j, bool training)
        {
            if (j == u.Stages.Count - 1) return true;
            if (!training) return false;
            return ReadsOwnOutput(u.Stages[j]) || ReadsItsInput(u.Stages[j + 1]);
        }

        private static bool ReadsOwnOutput(PlanStage st) => !st.IsBias && OpTable.Of(st.Kind).GradientSource == GradientSource.Output;
        private static bool ReadsItsInput(PlanStage st) => !st.IsBias && OpTable.Of(st.Kind).GradientSource == GradientSource.Input;
        private static bool ReadsMask(PlanStage st) => !st.IsBias && OpTable.Of(st.Kind).GradientSource == GradientSource.Mask;

        private static string StageForward(PlanStage st, string t, bool vector, bool training, string i, string biasScalar) => st.IsBias
            ? (vector ? $"{t} += bv;" : $"{t} += {biasScalar};")
            : OpTable.Of(st.Kind).StageForward(st, t, vector, training, i);

        private static void EmitChainForward(CpuContext c, PlanUnit u)
        {
            var w = c.Writer;
            bool training = c.Training;
            var (rows, cols, channels, colBias) = ChainShape(c, u);
            bool bias = u.StartsWithBias;
            string src = bias ? $"r{u.Source}" : c.Value(u.Source);
            w.Line($"// fused: {string.Join(" + ", u.Stages.Select(st => st.Title))}  {Shapes.Batched(c.Spec.Ops[u.Last].OutShape)}");
            w.Open();
            if (training)
                foreach (var st in u.Stages.Where(ReadsMask))
                    w.Line(DropoutOp.FillMask(c.Spec, st));
            w.Line($"int rows = {rows}, cols = {cols};");
            w.Line($"ref float src_ = ref {MemoryMarshal}.GetReference({src});");
            for (int j = 0; j < u.Stages.Count; j++)
                if (Stored(u, j, training)) w.Line($"ref float v{u.Stages[j].Value}_ = ref {MemoryMarshal}.GetReference(v{u.Stages[j].Value});");
            if (training)
                foreach (var st in u.Stages.Where(ReadsMask)) w.Line($"ref float m{st.Value}_ = ref {MemoryMarshal}.GetReference(m{st.Value});");
            if (bias) w.Line($"global::System.ReadOnlySpan<float> bias = {c.Read(u.Primary!, "bias")};");
            w.Open("for (int r = 0; r < rows; r++)");
            if (bias && !colBias) w.Line($"float bs = bias[r % {channels}];");
            w.Line("int i = r * cols, end = i + cols, j = 0;");
            EmitBothWidths(w, v =>
            {
                if (bias && !colBias) v.Line($"var bv = {Vector512}.Create(bs);");
                v.Open(WideLoop);
                v.Line($"var t = {Vector512}.LoadUnsafe(ref src_, (nuint)i);");
                if (bias && colBias) v.Line($"var bv = {Vector512}.LoadUnsafe(ref {MemoryMarshal}.GetReference(bias), (nuint)j);");
                for (int j = 0; j < u.Stages.Count; j++)
                {
                    v.Line(StageForward(u.Stages[j], "t", true, training, "i", ""));
                    if (Stored(u, j, training)) v.Line($"{Vector512}.StoreUnsafe(t, ref v{u.Stages[j].Value}_, (nuint)i);");
                }
                v.Close();
            });
            w.Open("for (; i < end; i++, j++)");
            w.Line($"float t = {Unsafe}.Add(ref src_, i);");
            for (int j = 0; j < u.Stages.Count; j++)
            {
                w.Line(StageForward(u.Stages[j], "t", false, training, "i", colBias ? "bias[j]" : "bs"));
                if (Stored(u, j, training)) w.Line($"{Unsafe}.Add(ref v{u.Stages[j].Value}_, i) = t;");
            }
            w.Close();
            w.Close();
            w.Close();
        }

        private static void EmitChainBackward(CpuContext c, PlanUnit u)
        {
            var w = c.Writer;
            var (rows, cols, channels, colBias) = ChainShape(c, u);
            bool bias = u.StartsWithBias;
            bool elementwise = u.Stages.Any(st => !st.IsBias);
            int src = c.Storage(u.Source);
            bool srcIsInput = c.Spec.Ops[src].Kind == OpKind.Input;
            w.Line($"// fused backward: {string.Join(" + ", u.Stages.Select(st => st.Title))}");
            w.Open();
            w.Line($"int rows = {rows}, cols = {cols};");
            w.Line($"ref float gy_ = ref {MemoryMarshal}.GetReference(g{u.Last});");
            bool writeDz = elementwise && !srcIsInput;
            if (writeDz) w.Line($"ref float gz_ = ref {MemoryMarshal}.GetReference(g{src});");
            if (writeDz) w.Line($"bool writeDz = n{src};");
            // What the stages' backward reads: the chain's source (a first stage that needs its input), the stored
            // values of output-gradient stages and of the stages before input-gradient ones, the masks.
            if (ReadsItsInput(u.Stages[0])) w.Line($"ref float src_ = ref {MemoryMarshal}.GetReference(v{src});");
            foreach (var st in u.Stages)
            {
                if (ReadsOwnOutput(st)) w.Line($"ref float v{st.Value}_ = ref {MemoryMarshal}.GetReference(v{st.Value});");
                if (ReadsMask(st)) w.Line($"ref float m{st.Value}_ = ref {MemoryMarshal}.GetReference(m{st.Value});");
            }
            for (int j = 1; j < u.Stages.Count; j++)
                if (ReadsItsInput(u.Stages[j]) && !ReadsOwnOutput(u.Stages[j - 1]))
                    w.Line($"ref float v{u.Stages[j - 1].Value}_ = ref {MemoryMarshal}.GetReference(v{u.Stages[j - 1].Value});");
            if (bias)
            {
                w.Line($"global::System.Span<float> db = {c.Gradient(u.Primary!, "bias")};");
                w.Line("ref float db_ = ref " + MemoryMarshal + ".GetReference(db);");
            }
            w.Open("for (int r = 0; r < rows; r++)");
            if (bias && !colBias) { w.Line("float accv = 0f, accs = 0f;"); }
            w.Line("int i = r * cols, end = i + cols, j = 0;");
            EmitBothWidths(w, v =>
            {
                if (bias && !colBias) v.Line($"var acc = {Vector512}<float>.Zero;");
                BackwardLoop(v, true);
                if (bias && !colBias) v.Line($"accv = {Vector512}.Sum(acc);");
            });
            BackwardLoop(w, false);
            if (bias && !colBias) w.Line($"if (!db.IsEmpty) db[r % {channels}] += accv + accs;");
            w.Close();
            w.Close();

            void BackwardLoop(SourceWriter w, bool vector)
            {
                w.Open(vector ? WideLoop : "for (; i < end; i++, j++)");
                w.Line(vector ? $"var g = {Vector512}.LoadUnsafe(ref gy_, (nuint)i);" : $"float g = {Unsafe}.Add(ref gy_, i);");
                string Load(string name) => vector ? $"{Vector512}.LoadUnsafe(ref {name}_, (nuint)i)" : $"{Unsafe}.Add(ref {name}_, i)";
                for (int j = u.Stages.Count - 1; j >= 0; j--)
                {
                    var st = u.Stages[j];
                    if (st.IsBias)
                    {
                        if (colBias)
                            w.Line(vector ? $"if (!db.IsEmpty) {Vector512}.StoreUnsafe({Vector512}.LoadUnsafe(ref db_, (nuint)j) + g, ref db_, (nuint)j);" : "if (!db.IsEmpty) db[j] += g;");
                        else w.Line(vector ? "acc += g;" : "accs += g;");
                        continue;
                    }
                    int prev = j == 0 ? -1 : u.Stages[j - 1].Value;
                    w.Line(OpTable.Of(st.Kind).StageBackward(st, prev, Load));
                }
                if (writeDz && c.Plan.OverwrittenGradients.Contains(src))
                    w.Line(vector ? $"if (writeDz) {Vector512}.StoreUnsafe(g, ref gz_, (nuint)i);" : $"if (writeDz) {Unsafe}.Add(ref gz_, i) = g;");
                else if (writeDz)
                    w.Line(vector ? $"if (writeDz) {Vector512}.StoreUnsafe({Vector512}.LoadUnsafe(ref gz_, (nuint)i) + g, ref gz_, (nuint)i);" : $"if (writeDz) {Unsafe}.Add(ref gz_, i) += g;");
                w.Close();
            }
        }
    }
}
