using System.Reflection;
using Compiled.Nets.Generator.Ops;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// The op table against what it must agree with: the attributes users write (every schema argument is a constructor
/// parameter of the op's attribute), the runtime's eager path (the layer type, the Tensor method), and the op list in
/// docs/architecture.md.
/// </summary>
public class OpTableTests
{
    /// <summary>docs/architecture.md: its path and text.</summary>
    private static (string Path, string Text) Docs
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Compiled.Nets.sln"))) dir = dir.Parent;
            string path = System.IO.Path.Combine(dir!.FullName, "docs", "architecture.md");
            return (path, File.ReadAllText(path));
        }
    }

    public static TheoryData<string> Ops()
    {
        var data = new TheoryData<string>();
        foreach (var op in OpTable.All.Where(o => o.Kind != Model.OpKind.Input)) data.Add(op.Name);
        return data;
    }

    private static OpDefinition Op(string name) => OpTable.All.Single(o => o.Name == name);

    [Theory]
    [MemberData(nameof(Ops))]
    public void Op_IsListedInTheArchitectureDocs(string name) =>
        Assert.Contains($"| `{name}` |", Docs.Text);

    [Theory]
    [MemberData(nameof(Ops))]
    public void Op_HasAnEagerPath(string name)
    {
        var op = Op(name);
        if (op.Method is { } method)
            Assert.True(typeof(Tensor).GetMethods(BindingFlags.Public | BindingFlags.Instance).Any(m => m.Name == method), $"Tensor has no method {method}");
        if (op.Layer is { } layer)
        {
            var type = typeof(Tensor).Assembly.GetType("Compiled.Nets." + layer);
            Assert.True(type is not null, $"the runtime has no layer type Compiled.Nets.{layer}");
            Assert.True(typeof(ILayer).IsAssignableFrom(type), $"Compiled.Nets.{layer} is not an ILayer");
        }
        // Operators: between tensors, or with a float constant (Scale: x * c, Shift: x + c).
        var (operatorMethod, operand) = op.Kind switch
        {
            Model.OpKind.Add => ("op_Addition", typeof(Tensor)), Model.OpKind.Subtract => ("op_Subtraction", typeof(Tensor)),
            Model.OpKind.Multiply => ("op_Multiply", typeof(Tensor)), Model.OpKind.Scale => ("op_Multiply", typeof(float)),
            Model.OpKind.Shift => ("op_Addition", typeof(float)), _ => ((string?)null, typeof(Tensor)),
        };
        if (operatorMethod is not null) Assert.NotNull(typeof(Tensor).GetMethod(operatorMethod, BindingFlags.Public | BindingFlags.Static, [typeof(Tensor), operand]));
        // Tensor.Concat(dim, a, b, …) and Tensor.MatMul(a, b), which the walker reads itself.
        if (op.Kind is Model.OpKind.Concat or Model.OpKind.MatMul) operatorMethod = op.Kind.ToString();
        if (op.Kind is Model.OpKind.Concat or Model.OpKind.MatMul) Assert.Contains(typeof(Tensor).GetMethods(BindingFlags.Public | BindingFlags.Static), m => m.Name == operatorMethod);
        Assert.True(op.Method is not null || op.Layer is not null || operatorMethod is not null, $"{name} cannot be written in Forward");
    }

    [Theory]
    [MemberData(nameof(Ops))]
    public void LayerArguments_AreTheAttributesConstructorParameters(string name)
    {
        var op = Op(name);
        if (op.Layer is not { } layer) { Assert.Empty(op.Arguments); return; }
        var attribute = typeof(NetworkAttribute).Assembly.GetType($"Compiled.Nets.{layer}Attribute");
        Assert.NotNull(attribute);
        var parameters = attribute!.GetConstructors().SelectMany(c => c.GetParameters()).ToDictionary(p => p.Name!, p => p, StringComparer.Ordinal);
        foreach (var argument in op.Arguments)
        {
            // A settable property (Conv2d's KernelWidth, Groups) serves as a named argument.
            if (!parameters.ContainsKey(argument.Name) && attribute.GetProperty(argument.Name) is { CanWrite: true }) continue;
            Assert.True(parameters.TryGetValue(argument.Name, out var parameter), $"[{layer}] has no constructor parameter or settable property '{argument.Name}'");
            // The schema's default is the attribute's: what the generator assumes is what the user's call means.
            if (parameter!.HasDefaultValue)
                Assert.Equal(Convert.ToDouble(parameter.DefaultValue), argument.Kind == ArgumentKind.Bias ? 1.0 : argument.Default);
        }
        // And every constructor parameter is read (or is the size activations ignore with CNET0007).
        foreach (var parameter in parameters.Keys)
            Assert.True(op.Arguments.Any(a => a.Name == parameter) || parameter == "features" && op.Arguments.Count == 0,
                $"[{layer}]'s constructor parameter '{parameter}' is not in the op's schema");
    }

    [Fact]
    public void SupportedCalls_ListEveryMethodForm()
    {
        var message = DiagnosticDescriptors.UnsupportedOp.MessageFormat.ToString();
        foreach (var op in OpTable.All.Where(o => o.Method is not null))
            Assert.Contains(op.MethodUsage!, message);
        Assert.Contains("x.Apply(Layer)", message);
        // The diagnostic's page lists them too.
        string root = Path.GetDirectoryName(Path.GetDirectoryName(Docs.Path))!;
        string page = File.ReadAllText(Path.Combine(root, "docs", "diagnostics", "CNET0005.md"));
        foreach (var op in OpTable.All.Where(o => o.Method is not null))
            Assert.Contains($"`{op.MethodUsage}`", page);
    }

    [Fact]
    public void Losses_HaveTheirAttributesAndEagerForms()
    {
        var eager = new Dictionary<Model.LossKind, string>
        {
            [Model.LossKind.CrossEntropy] = "CrossEntropy", [Model.LossKind.Mse] = "Mse", [Model.LossKind.L1] = "L1",
            [Model.LossKind.SmoothL1] = "SmoothL1", [Model.LossKind.BceWithLogits] = "BceWithLogits", [Model.LossKind.Nll] = "Nll", [Model.LossKind.KlDiv] = "KlDiv",
            [Model.LossKind.CosineEmbedding] = "CosineEmbedding", [Model.LossKind.Custom] = "Mean", [Model.LossKind.CustomClassIndices] = "Mean", // the user's own method, then its mean
        };
        foreach (var loss in Losses.All)
        {
            var attribute = typeof(NetworkAttribute).Assembly.GetType($"Compiled.Nets.{loss.Name}Attribute");
            Assert.NotNull(attribute);
            Assert.Contains(typeof(Tensor).GetMethods(), m => m.Name == eager[loss.Kind]);
            // The attribute's property the generator reads, with the default it assumes.
            if (loss.ParameterName is { } name)
            {
                var property = attribute!.GetProperty(name);
                Assert.NotNull(property);
                Assert.Equal(loss.ParameterDefault, Convert.ToDouble(property!.GetValue(Activator.CreateInstance(attribute))), 6);
            }
        }
        Assert.Equal(Enum.GetValues<Model.LossKind>().Length - 1, Losses.All.Count);
    }
}
