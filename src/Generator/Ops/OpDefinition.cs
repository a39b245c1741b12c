using System;
using System.Collections.Generic;
using Compiled.Nets.Generator.Emit;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Parsing;
using Compiled.Nets.Generator.Planning;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.Generator.Ops
{
    /// <summary>What the backward pass of an elementwise op reads: its output (ReLU), its input (GELU), a mask (dropout)
    /// or nothing (scaling by a constant).</summary>
    internal enum GradientSource { Output, Input, Mask, None }

    /// <summary>Where a layer's bias is added: nowhere, inside its kernel (convolution), or as the first stage of the fused chain (Linear).</summary>
    internal enum BiasPlacement { None, InKernel, InChain }

    internal enum ArgumentKind { Int, Real, Bias }

    internal enum ArgumentRule { None, Positive, NonNegative, Probability }

    /// <summary>One constructor argument of a layer attribute: its C# parameter name, kind, default and what it must satisfy.</summary>
    internal sealed record Argument(string Name, ArgumentKind Kind, double Default, ArgumentRule Rule)
    {
        public static Argument Int(string name, ArgumentRule rule = ArgumentRule.Positive, int fallback = 0) => new(name, ArgumentKind.Int, fallback, rule);
        public static Argument Real(string name, double fallback, ArgumentRule rule = ArgumentRule.None) => new(name, ArgumentKind.Real, fallback, rule);
        public static readonly Argument Bias = new("bias", ArgumentKind.Bias, 1, ArgumentRule.None);
    }

    /// <summary>A layer attribute being read: the property, its attribute's arguments (by name, with locations) and the values so far.</summary>
    internal sealed class LayerDeclaration
    {
        public LayerDeclaration(string property, string typeName, NetworkParser.AttributeArgs args, bool isRoot, int[] ints, double[] reals)
        {
            Property = property; TypeName = typeName; Args = args; IsRoot = isRoot; Ints = ints; Reals = reals;
        }

        public string Property { get; }
        public string TypeName { get; }
        public NetworkParser.AttributeArgs Args { get; }
        public bool IsRoot { get; }
        public int[] Ints { get; }
        public double[] Reals { get; }
    }

    /// <summary>A declared layer applied in Forward: <c>x.Apply(Layer)</c>.</summary>
    internal sealed class LayerApplication
    {
        public LayerApplication(InvocationExpressionSyntax invocation, NetworkParser.LayerRef layer, LayerSpec spec, int input, int[] shape)
        {
            Invocation = invocation; Layer = layer; Spec = spec; Input = input; Shape = shape;
        }

        public InvocationExpressionSyntax Invocation { get; }
        public NetworkParser.LayerRef Layer { get; }
        public LayerSpec Spec { get; }
        /// <summary>The value applied to.</summary>
        public int Input { get; }
        /// <summary>Its per-sample shape.</summary>
        public int[] Shape { get; }
        /// <summary>The property's name, as messages call the layer.</summary>
        public string Who => Layer.Property;
        public NetworkParser.AttributeArgs Args => Layer.ArgLocations!;
    }

    /// <summary>Receives a layer's tensors: state-dict suffix, shape, role, initialisation (emitted text), buffer or parameter.</summary>
    internal delegate void ParameterSink(string suffix, int[] shape, string role, string init, bool buffer = false);

    /// <summary>
    /// One op, in one place: how it is declared (layer attribute and argument schema, or Tensor method), its parameters
    /// with PyTorch's names and initialisation, its shape rule and diagnostics, what backward needs saved, its CPU
    /// forward and backward emission side by side, its ONNX nodes, and the flags the planner fuses by. The parser,
    /// the walker, the planner and the emitters dispatch through <see cref="OpTable"/>.
    /// </summary>
    internal abstract class OpDefinition
    {
        protected static readonly IReadOnlyList<Argument> NoArguments = Array.Empty<Argument>();

        /// <summary>The op in the plan.</summary>
        public abstract OpKind Kind { get; }

        /// <summary>How docs and messages name it ("Conv2d", "ReLU").</summary>
        public abstract string Name { get; }

        // ------------------------------------------------------------ declaration

        /// <summary>The layer kind declaring it (<c>[Conv2d(...)] Conv2d Conv1 { get; }</c>), when it has one.</summary>
        public virtual LayerKind? Layer => null;

        /// <summary>The Tensor method Forward calls it by (<c>x.Relu()</c>), when it has one: the eager method of the same name.</summary>
        public virtual string? Method => null;

        /// <summary>Other names Forward may call it by (<c>View</c> for Reshape).</summary>
        public virtual IReadOnlyList<string> Aliases => Array.Empty<string>();

        /// <summary>How CNET0005's list of supported calls shows the method.</summary>
        public virtual string? MethodUsage => Method is null ? null : Method + "()";

        /// <summary>The layer attribute's constructor arguments read into <see cref="LayerSpec.Ints"/> and <see cref="LayerSpec.Real"/>/<see cref="LayerSpec.Real2"/>, in order.</summary>
        public virtual IReadOnlyList<Argument> Arguments => NoArguments;

        /// <summary>True when the layer always has biases (no <c>bias</c> argument).</summary>
        public virtual bool AlwaysHasBias => false;

        /// <summary>Fills in arguments whose default depends on another (a pool's stride defaults to its kernel).</summary>
        public virtual void Normalize(int[] ints) { }

        /// <summary>Checks beyond the schema's rules, run after the positive/non-negative checks; false after reporting.</summary>
        public virtual bool Check(NetworkParser parser, LayerDeclaration d) => true;

        /// <summary>The layer's tensors (PyTorch state-dict suffixes and default initialisation).</summary>
        public virtual void DeclareParameters(LayerSpec l, ParameterSink add) { }

        /// <summary>The runtime layer object behind the property (<paramref name="stateName"/> is an emitted string expression).</summary>
        public virtual string Construct(LayerSpec l, string stateName) => $"new {Names.Runtime}{l.Kind}()";

        // ------------------------------------------------------------ shape rule

        /// <summary>Only an embedding takes token ids.</summary>
        public virtual bool AcceptsTokens => false;

        /// <summary><c>x.Apply(Layer)</c>: checks the shape, reports what does not fit, and adds the op. Returns its value or -1.</summary>
        public virtual int Apply(ForwardWalker walker, LayerApplication a) => throw new InvalidOperationException(Name + " is not a layer");

        /// <summary><c>x.Method(...)</c>: as <see cref="Apply"/> for the method form.</summary>
        public virtual int Call(ForwardWalker walker, InvocationExpressionSyntax invocation, int x, int[] shape) => throw new InvalidOperationException(Name + " has no method form");

        /// <summary>How messages name the producer of a value, when not by the op's label ("ReLU", "the residual add").</summary>
        public virtual string? ProducerName => null;

        // ------------------------------------------------------------ planning

        /// <summary>Elementwise: fuses into the chain of the op that produced its input.</summary>
        public virtual bool IsElementwise => false;

        /// <summary>For an elementwise op: what its backward reads.</summary>
        public virtual GradientSource GradientSource => GradientSource.Output;

        /// <summary>A view (Flatten): its value is its input's storage.</summary>
        public virtual bool IsView => false;

        public virtual BiasPlacement Bias => BiasPlacement.None;

        /// <summary>The bias is per channel of a [C, …] output (a convolution's), not per column (a Linear's).</summary>
        public virtual bool BiasPerChannel => false;

        /// <summary>Its backward can write its input's gradient instead of adding to it (when it is that gradient's only contributor).</summary>
        public virtual bool CanWriteInputGradient => false;

        /// <summary>Reads the attention mask (the ONNX graph then takes it as an input).</summary>
        public virtual bool ReadsMask => false;

        /// <summary>This op reads the attention mask (a reduction or softmax over T, where others of its kind do not).</summary>
        public virtual bool ReadsMaskFor(OpSpec op) => ReadsMask;

        /// <summary>What forward keeps for backward beyond the op's value: arena regions named with the op id.</summary>
        public virtual void SavedForBackward(RegionBuilder regions, NetworkSpec s, OpSpec op) { }

        /// <summary>Regions all ops of this kind share (each op's backward uses them only while it runs).</summary>
        public virtual void SharedRegions(RegionBuilder regions, NetworkSpec s, IReadOnlyList<OpSpec> ops) { }

        /// <summary>The scratch one call needs, as emitted text (null: none).</summary>
        public virtual string? ScratchSize(NetworkSpec s, OpSpec op) => null;

        // ------------------------------------------------------------ CPU emission

        /// <summary>An expression of the bytes the op's kernel keeps between calls for this instance (null: none).</summary>
        public virtual string? CacheBytes(OpSpec op) => null;

        /// <summary>Fields the network keeps for all ops of this kind.</summary>
        public virtual void EmitFields(CpuContext c, IReadOnlyList<OpSpec> ops) { }

        public virtual void EmitForward(CpuContext c, OpSpec op) => throw new InvalidOperationException("Unexpected primary op " + op.Kind);

        public virtual void EmitBackward(CpuContext c, OpSpec op) { }

        /// <summary>An elementwise op inside a fused loop: <paramref name="t"/> is the running value (a Vector512 or a float).</summary>
        public virtual string StageForward(PlanStage stage, string t, bool vector, bool training, string index) => throw new InvalidOperationException(Name + " is not elementwise");

        /// <summary>The chain rule through an elementwise op inside a fused loop: <c>g</c> is the running gradient;
        /// <paramref name="load"/> reads a saved tensor at the loop index (prefix "v" + id, "m" + id or "src").</summary>
        public virtual string StageBackward(PlanStage stage, int previousValue, Func<string, string> load) => throw new InvalidOperationException(Name + " is not elementwise");

        // ------------------------------------------------------------ GPU emission

        /// <summary>The GPU emitter has this op: library launches for a primary op, its scalar stage inside a fused
        /// kernel for an elementwise op, nothing for a view.</summary>
        public virtual bool OnGpu => IsView;

        /// <summary>The GPU emitter has this op with these arguments (a grouped convolution, say, not yet).</summary>
        public virtual bool OnGpuFor(NetworkSpec s, OpSpec op) => OnGpu;

        /// <summary>The GPU emission sizes this op's [T, …] values by the batch's sequence length (the device twin of a
        /// sequence network takes only such ops where T runs).</summary>
        public virtual bool OnGpuOverSequence => IsElementwise || IsView;

        /// <summary>An elementwise op inside a fused GPU kernel (scalar <paramref name="t"/> at element <c>i</c>): its CPU
        /// scalar stage unless the device needs another (dropout draws its mask there).</summary>
        public virtual string GpuStageForward(NetworkSpec s, PlanStage stage, string t) => StageForward(stage, t, false, true, "i");

        /// <summary>The op's forward launches on the device twin (<see cref="GpuContext.Launch"/> counts them).</summary>
        public virtual void EmitGpuForward(GpuContext c, OpSpec op) => throw new InvalidOperationException(Name + " has no GPU forward");

        /// <summary>The op's backward launches: add to its input's gradient and its parameters' gradients.</summary>
        public virtual void EmitGpuBackward(GpuContext c, OpSpec op) { }

        // ------------------------------------------------------------ ONNX

        public abstract void EmitOnnx(OnnxContext c, OpSpec op);
    }
}
