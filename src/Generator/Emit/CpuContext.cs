using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using Compiled.Nets.Generator.Planning;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>What every backend's emission of an op sees: the spec, the plan, the writer, and lookups by value and layer.</summary>
    internal abstract class EmitContext
    {
        protected EmitContext(NetworkSpec spec, Plan plan, SourceWriter writer) { Spec = spec; Plan = plan; Writer = writer; }

        public NetworkSpec Spec { get; }
        public Plan Plan { get; }
        public SourceWriter Writer { get; }

        public void Line(string text = "") => Writer.Line(text);

        public int Storage(int value) => Plan.Storage(value);

        public LayerSpec Layer(OpSpec op) => Spec.Layers[op.Layer];

        public ParamSpec Param(OpSpec op, string suffix) => Spec.Parameters.First(p => p.Name == Layer(op).StateName + "." + suffix);

        /// <summary>An op's trainable tensors: those its definition declares for its layer, without buffers.</summary>
        public IEnumerable<ParamSpec> TrainableParams(OpSpec op)
        {
            if (op.Layer < 0) return Enumerable.Empty<ParamSpec>();
            var l = Spec.Layers[op.Layer];
            var own = new HashSet<string>();
            OpTable.Of(l.Kind).DeclareParameters(l, (suffix, _, _, _, _) => own.Add(l.StateName + "." + suffix));
            return Spec.Parameters.Where(p => !p.IsBuffer && own.Contains(p.Name));
        }

        /// <summary>
        /// <c>bool n{id} = …;</c> for every op: whether its value needs a gradient, that is whether a trainable tensor lies
        /// upstream (its own, read through <paramref name="owner"/>, or its inputs'). Backward skips what needs none, so
        /// frozen layers before the first trainable one cost nothing.
        /// </summary>
        public void EmitNeeds(string owner)
        {
            Line("// Which values need a gradient (something trainable lies upstream); frozen parameters cost nothing.");
            foreach (var op in Spec.Ops)
            {
                var terms = new List<string>();
                foreach (var p in TrainableParams(op)) terms.Add($"{owner}{p.Field}.RequiresGrad");
                if (op.Input >= 0) terms.Add($"n{op.Input}");
                if (op.Input2 >= 0) terms.Add($"n{op.Input2}");
                Line($"bool n{op.Id} = {(terms.Count == 0 ? "false" : string.Join(" || ", terms))};");
            }
        }

        /// <summary>Rows of an op working on its last dimension: the batch times every other dimension.</summary>
        public string Rows(OpSpec op) => $"batch * {Shapes.Size(op.OutShape.Take(op.OutShape.Count - 1))}";

        /// <summary>The value is the network's input (data: no gradient to pass on).</summary>
        public bool IsData(int value) => Spec.Ops[Storage(value)].Kind == OpKind.Input;

        /// <summary>The op reads the network's input directly.</summary>
        public bool InputIsData(OpSpec op) => IsData(op.Input);

        /// <summary>The value is a ReLU's output, perhaps pooled, flattened or reshaped after it (so mostly zeros).</summary>
        public bool IsReluOutput(int value)
        {
            var op = Spec.Ops[value];
            switch (op.Kind)
            {
                case OpKind.Relu: return true;
                case OpKind.MaxPool2d: case OpKind.Flatten: case OpKind.Reshape: case OpKind.Dropout: case OpKind.Dropout2d: return IsReluOutput(op.Input);
                default: return false;
            }
        }
    }

    /// <summary>
    /// What an op's CPU emission sees: the names the generated code gives values (<c>v{id}</c>), their gradients
    /// (<c>g{id}</c>), whether they need one (<c>n{id}</c>) and parameters.
    /// </summary>
    internal sealed class CpuContext : EmitContext
    {
        public CpuContext(NetworkSpec spec, Plan plan, SourceWriter writer) : base(spec, plan, writer) { }

        /// <summary>Emitting TrainStep's forward (dropout on, BatchNorm batch statistics, saving for backward).</summary>
        public bool Training { get; set; }

        public bool IsSequence => Spec.MaxSequence > 0;

        /// <summary>Every plan region already has its span in scope (the loss's own regions included).</summary>
        public bool RegionsInScope { get; set; }

        /// <summary>The span holding a value.</summary>
        public string Value(int value) => $"v{Storage(value)}";

        /// <summary>Where an op writes: its value, or the raw region its bias chain reads.</summary>
        public string Output(OpSpec op) => Plan.BiasInChain.Contains(op.Id) ? $"r{op.Id}" : $"v{op.Id}";

        /// <summary>A tensor's values: parameters through ReadValue (allowed while the store is read-only for
        /// inference), buffers (BatchNorm statistics, which training updates) through Value.</summary>
        public static string Read(ParamSpec p) => p.IsBuffer ? $"_store.Value({p.Field})" : $"_store.ReadValue({p.Field})";
        public string Read(OpSpec op, string suffix) => Read(Param(op, suffix));

        /// <summary>A parameter's gradient, or an empty span when it is frozen.</summary>
        public static string Gradient(ParamSpec p) => $"({p.Field}.RequiresGrad ? _store.Gradient({p.Field}) : default)";
        public string Gradient(OpSpec op, string suffix) => Gradient(Param(op, suffix));

        /// <summary>The input's gradient span for a backward call, empty when it needs none.</summary>
        public string InputGradient(OpSpec op) => InputIsData(op) ? "default" : $"(n{op.Input} ? g{op.Input} : default)";

        /// <summary>The op's backward is the only contribution to its input's gradient: it writes instead of adding.</summary>
        public bool WritesInputGradient(OpSpec op) => !InputIsData(op) && Plan.OverwrittenGradients.Contains(Storage(op.Input));
    }

    /// <summary>What an op's ONNX emission sees: node and value names, initializers under their state-dict names.</summary>
    internal sealed class OnnxContext
    {
        public OnnxContext(NetworkSpec spec, SourceWriter writer, bool masked) { Spec = spec; Writer = writer; Masked = masked; }

        public NetworkSpec Spec { get; }
        public SourceWriter Writer { get; }

        /// <summary>The graph has the attention mask as an input.</summary>
        public bool Masked { get; }

        public void Line(string text) => Writer.Line(text);

        public string Value(int id) => Spec.Ops[id].Kind == OpKind.Input ? $"\"{CpuEmitter.InputName(Spec, id)}\"" : $"\"v{id}\"";
        public string Output(OpSpec op) => $"\"v{op.Id}\"";
        public LayerSpec Layer(OpSpec op) => Spec.Layers[op.Layer];

        private ParamSpec Param(OpSpec op, string suffix) => Spec.Parameters.First(q => q.Name == Layer(op).StateName + "." + suffix);

        /// <summary>A tensor's values (emitted span expression), for initializers the op reshapes first.</summary>
        public string Read(OpSpec op, string suffix) => CpuContext.Read(Param(op, suffix));

        /// <summary>A tensor as an initializer (emitted expression giving its name).</summary>
        public string Initializer(OpSpec op, string suffix)
        {
            var p = Param(op, suffix);
            return $"g.Initializer(\"{p.Name}\", {CpuContext.Read(p)}{string.Concat(p.Shape.Select(d => ", " + SourceWriter.IntLiteral(d)))})";
        }

        /// <summary>A [rows, cols] weight transposed, for a MatMul over the last dimension.</summary>
        public string TransposedInitializer(OpSpec op, string suffix, int rows, int cols)
        {
            var p = Param(op, suffix);
            return $"g.TransposedInitializer(\"{p.Name}.T\", _store.ReadValue({p.Field}), {SourceWriter.IntLiteral(rows)}, {SourceWriter.IntLiteral(cols)})";
        }

        public static string Ints(params int[] v) => $"new int[] {{ {string.Join(", ", v.Select(x => SourceWriter.IntLiteral(x)))} }}";
    }
}
