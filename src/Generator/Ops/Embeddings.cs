using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary><c>[Embedding(count, dim)]</c> and the positional/token-type tables, read from a layer's arguments.</summary>
    internal readonly record struct EmbeddingArgs(int Count, int Dim)
    {
        public static EmbeddingArgs Of(LayerSpec l) => new(l.Ints[0], l.Ints[1]);
    }

    /// <summary>The three embedding tables share their declaration: a [count, dim] weight, N(0, 1) as nn.Embedding.</summary>
    internal abstract class EmbeddingTable : OpDefinition
    {
        private static readonly Argument[] s_arguments = { Argument.Int("count"), Argument.Int("dim") };

        public override IReadOnlyList<Argument> Arguments => s_arguments;

        public override void DeclareParameters(LayerSpec l, ParameterSink add)
        {
            var a = EmbeddingArgs.Of(l);
            add("weight", new[] { a.Count, a.Dim }, "Embedding", "Normal(1f)");
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = EmbeddingArgs.Of(l);
            return $"new {Runtime}{l.Kind}(_store, {stateName}, {a.Count}, {a.Dim})";
        }
    }

    /// <summary>Token ids → vectors (a gather); backward scatters into the table's gradient, leaving out the padding row
    /// (<c>PaddingIdx</c>, PyTorch's padding_idx: zeros at initialisation, never updated).</summary>
    internal sealed class EmbeddingOp : EmbeddingTable
    {
        private static readonly Argument[] s_arguments = { Argument.Int("count"), Argument.Int("dim"), Argument.Int("PaddingIdx", ArgumentRule.None, int.MinValue) };

        public override IReadOnlyList<Argument> Arguments => s_arguments;

        /// <summary>The padding row counted from the start, or -1 for none.</summary>
        public static int PaddingRow(LayerSpec l) => l.Ints[2] == int.MinValue ? -1 : l.Ints[2] < 0 ? l.Ints[2] + l.Ints[0] : l.Ints[2];

        public override void Normalize(int[] ints) { }

        public override bool Check(NetworkParser parser, LayerDeclaration d)
        {
            int count = d.Ints[0], padding = d.Ints[2];
            if (padding == int.MinValue || padding >= -count && padding < count) return true;
            parser.ReportPublic(DiagnosticDescriptors.InvalidArgument, d.Args.Location("PaddingIdx"), d.Property, $"PaddingIdx {padding} is outside the table's rows [-{count}, {count})");
            return false;
        }

        public override string Construct(LayerSpec l, string stateName)
        {
            var a = EmbeddingArgs.Of(l);
            int padding = PaddingRow(l);
            return $"new {Runtime}Embedding(_store, {stateName}, {a.Count}, {a.Dim}{(padding >= 0 ? $", {padding}" : "")})";
        }

        /// <summary>After the store's initialisation: each padding row set to zeros, as nn.Embedding does.</summary>
        public static void EmitInitialisation(CpuContext c)
        {
            foreach (var l in c.Spec.Layers.Where(l => l.Kind == LayerKind.Embedding && PaddingRow(l) >= 0))
            {
                var weight = c.Spec.Parameters.First(p => p.Name == l.StateName + ".weight");
                int dim = EmbeddingArgs.Of(l).Dim;
                c.Line($"_store.Value({weight.Field}).Slice({PaddingRow(l) * dim}, {dim}).Clear(); // {l.Property}'s padding row (PaddingIdx) starts at zeros");
            }
        }

        public override OpKind Kind => OpKind.Embedding;
        public override string Name => "Embedding";
        public override LayerKind? Layer => LayerKind.Embedding;
        public override bool AcceptsTokens => true;

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            if (!walker.Parser.IsTokens(a.Input))
            {
                walker.Parser.ReportPublic(DiagnosticDescriptors.RankMismatch, ForwardWalker.Location(a.Invocation), $"{a.Who} (Embedding)", "token ids ([Input(..., Kind = InputKind.TokenIds)])", NetworkParser.ShapeBracket(a.Shape) + " floats", walker.InputText, "");
                return -1;
            }
            return walker.Parser.AddOp(OpKind.Embedding, a.Input, -1, a.Layer.Layer, a.Shape, a.Shape.Concat(new[] { EmbeddingArgs.Of(a.Spec).Dim }).ToArray(), System.Array.Empty<int>(), 0, a.Who);
        }

        public override void EmitForward(CpuContext c, OpSpec op)
        {
            var a = EmbeddingArgs.Of(c.Layer(op));
            c.Line($"{Kernels}EmbeddingKernels.Forward({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, batch * {Shapes.Size(op.InShape)}, {a.Count}, {a.Dim});");
        }

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            var weight = c.Param(op, "weight");
            int padding = PaddingRow(c.Layer(op));
            c.Line($"if ({weight.Field}.RequiresGrad) {Kernels}EmbeddingKernels.Backward(_store.Gradient({weight.Field}), g{op.Id}, {c.Value(op.Input)}, batch * {Shapes.Size(op.InShape)}, {EmbeddingArgs.Of(c.Layer(op)).Dim}{(padding >= 0 ? $", paddingIdx: {padding}" : "")});");
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        // Its input is the uploaded token ids (the twin checked them against the table on the host).
        public override void EmitGpuForward(GpuContext c, OpSpec op) =>
            c.Launch($"K.EmbeddingForward({c.Output(op)}, {c.TokenInput(op.Input)}, {c.Read(op, "weight")}, batch * {Shapes.Size(op.InShape)}, {EmbeddingArgs.Of(c.Layer(op)).Dim});");

        // The ids grouped by id on the host as they were uploaded: one group per distinct id sums its rows in order.
        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            string ids = c.TokenRuns(op.Input) ?? $"{c.TokenInput(op.Input)}, batch * {Shapes.Size(op.InShape)}";
            c.Launch($"if ({c.Trains(op, "weight")}) K.EmbeddingBackward({c.TrainedGradient(op, "weight")}, {c.Gradient(op.Id)}, {ids}, {EmbeddingArgs.Of(c.Layer(op)).Dim}, {PaddingRow(c.Layer(op))});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op) => c.Line($"g.Node(\"Gather\", new[] {{ {c.Initializer(op, "weight")}, {c.Value(op.Input)} }}, {c.Output(op)});");
    }

    /// <summary>Position and token-type embeddings added to a [T, D] sequence (BERT's embedding sum).</summary>
    internal abstract class AddedEmbedding : EmbeddingTable
    {
        public override bool CanWriteInputGradient => true;

        public override int Apply(ForwardWalker walker, LayerApplication a)
        {
            var i = EmbeddingArgs.Of(a.Spec);
            var shape = a.Shape;
            var p = walker.Parser;
            string what = Layer!.Value.ToString();
            if (shape.Length != 2) { walker.Rank(a.Invocation, $"{a.Who} ({what})", "[T, D] (a sequence of feature vectors)", shape); return -1; }
            if (shape[1] != i.Dim)
            {
                if (!p.ReportFixable(DiagnosticDescriptors.FeatureMismatch, a.Args.Location("dim"), ForwardWalker.Int(shape[1]), a.Who, $"{i.Dim} features ({what}({i.Count}, {i.Dim}))", walker.Producer(a.Input), walker.FeatureText(a.Input, shape), walker.InputText, "")) return -1;
            }
            int longest = shape[0] == Shapes.Sequence ? p.MaxSequence : shape[0];
            if (Kind == OpKind.AddPositions && longest > i.Count)
            {
                p.ReportPublic(DiagnosticDescriptors.InvalidArgument, a.Args.Location("count"), a.Who, $"{i.Count} positions do not cover sequences of up to {longest} tokens");
                return -1;
            }
            return p.AddOp(Kind, a.Input, -1, a.Layer.Layer, shape, shape, System.Array.Empty<int>(), 0, a.Who);
        }

        public override bool OnGpu => true;
        public override bool OnGpuOverSequence => true;

        /// <summary>The row of the table added at element i of a sample's block: the block is [T, D] for positions, [D] for the token type.</summary>
        protected abstract string GpuBlock(OpSpec op, int dim);

        /// <summary>y = x + the table's rows, broadcast over the batch (and over positions for the token type).</summary>
        public override void EmitGpuForward(GpuContext c, OpSpec op)
        {
            int dim = EmbeddingArgs.Of(c.Layer(op)).Dim;
            c.Launch($"K.AddBroadcast({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, batch * {Shapes.Size(op.OutShape)}, {GpuBlock(op, dim)});");
        }

        /// <summary>dx += dy; the table's rows get dy's column sums over the batch (and positions).</summary>
        public override void EmitGpuBackward(GpuContext c, OpSpec op)
        {
            int dim = EmbeddingArgs.Of(c.Layer(op)).Dim;
            string n = $"batch * {Shapes.Size(op.OutShape)}", block = GpuBlock(op, dim);
            if (!c.InputIsData(op)) c.Launch($"if (n{op.Input}) K.AddTo({c.Gradient(op.Input)}, {c.Gradient(op.Id)}, {n});");
            c.Launch($"if ({c.Trains(op, "weight")}) K.AddColumnSums({c.TrainedGradient(op, "weight")}, {c.Gradient(op.Id)}, (int)({n}) / ({block}), {block});");
        }

        /// <summary>The sum's gradient flows to the input unchanged (written when nothing else adds to it).</summary>
        protected static void EmitInputGradient(CpuContext c, OpSpec op)
        {
            if (!c.InputIsData(op)) c.Line(c.WritesInputGradient(op) ? $"if (n{op.Input}) g{op.Id}.CopyTo(g{op.Input});" : $"if (n{op.Input}) {Elementwise}.AddInPlace(g{op.Input}, g{op.Id});");
        }
    }

    internal sealed class PositionEmbeddingOp : AddedEmbedding
    {
        public override OpKind Kind => OpKind.AddPositions;
        public override string Name => "PositionEmbedding";
        public override LayerKind? Layer => LayerKind.PositionEmbedding;

        protected override string GpuBlock(OpSpec op, int dim) => Shapes.Size(op.OutShape);

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Kernels}EmbeddingKernels.AddPositions({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, batch, {Shapes.Dim(op.InShape[0])}, {EmbeddingArgs.Of(c.Layer(op)).Dim});");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            var weight = c.Param(op, "weight");
            EmitInputGradient(c, op);
            c.Line($"if ({weight.Field}.RequiresGrad) {Kernels}EmbeddingKernels.AddPositionsBackward(_store.Gradient({weight.Field}), g{op.Id}, batch, {Shapes.Dim(op.InShape[0])}, {EmbeddingArgs.Of(c.Layer(op)).Dim});");
        }

        /// <summary>The graph slices the table to the input's sequence length (see <see cref="OnnxEmitter"/>).</summary>
        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            string end = op.InShape[0] < 0 ? "\"sequence_length\"" : $"g.Int64(true, {IntLiteral(op.InShape[0])})";
            c.Line($"g.Node(\"Slice\", new[] {{ {c.Initializer(op, "weight")}, g.Int64(true, 0), {end}, g.Int64(true, 0) }}, \"v{op.Id}_positions\");");
            c.Line($"g.Node(\"Add\", new[] {{ {c.Value(op.Input)}, \"v{op.Id}_positions\" }}, {c.Output(op)});");
        }
    }

    /// <summary>Token type 0 everywhere: the table's first row added to each position.</summary>
    internal sealed class TokenTypeEmbeddingOp : AddedEmbedding
    {
        public override OpKind Kind => OpKind.AddTokenType;
        public override string Name => "TokenTypeEmbedding";
        public override LayerKind? Layer => LayerKind.TokenTypeEmbedding;

        protected override string GpuBlock(OpSpec op, int dim) => IntLiteral(dim);

        public override void EmitForward(CpuContext c, OpSpec op) =>
            c.Line($"{Elementwise}.AddToEachRow({c.Output(op)}, {c.Value(op.Input)}, {c.Read(op, "weight")}, {c.Rows(op)}, {EmbeddingArgs.Of(c.Layer(op)).Dim}); // token type 0 everywhere");

        public override void EmitBackward(CpuContext c, OpSpec op)
        {
            var weight = c.Param(op, "weight");
            int dim = EmbeddingArgs.Of(c.Layer(op)).Dim;
            EmitInputGradient(c, op);
            c.Line($"if ({weight.Field}.RequiresGrad) {Kernels}LinearKernels.BiasBackward(_store.Gradient({weight.Field}).Slice(0, {dim}), g{op.Id}, {c.Rows(op)}, {dim});");
        }

        public override void EmitOnnx(OnnxContext c, OpSpec op)
        {
            c.Line($"g.Node(\"Gather\", new[] {{ {c.Initializer(op, "weight")}, g.Int64(false, 0) }}, \"v{op.Id}_type0\"); // token type 0 everywhere");
            c.Line($"g.Node(\"Add\", new[] {{ {c.Value(op.Input)}, \"v{op.Id}_type0\" }}, {c.Output(op)});");
        }
    }
}
