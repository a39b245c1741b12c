using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>The network's input: floats, or token ids (<c>Real = 1</c>) that only an embedding reads.</summary>
    internal sealed class InputOp : OpDefinition
    {
        public override OpKind Kind => OpKind.Input;
        public override string Name => "input";
        public override string? ProducerName => "the input";
        public override bool OnGpu => true; // the uploaded batch
        public override bool OnGpuOverSequence => true;
        public override void EmitOnnx(OnnxContext c, OpSpec op) { }
    }
}
