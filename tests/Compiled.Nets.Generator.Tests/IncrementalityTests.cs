using System.Reflection;
using Compiled.Nets.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Compiled.Nets.Generator.Tests;

/// <summary>The Roslyn cookbook's incrementality checks, and the model-purity rule (no symbols or syntax in specs).</summary>
public class IncrementalityTests
{
    private const string Net = """
        using Compiled.Nets;
        [Network, Input(4), CrossEntropyLoss]
        public partial class N
        {
            [Linear(4, 3)] public partial Linear Fc { get; }
            Tensor Forward(Tensor x) => x.Apply(Fc);
        }
        """;

    private static IncrementalStepRunReason[] Reasons(GeneratorDriver driver, string step) =>
        driver.GetRunResult().Results.Single().TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    private static IncrementalStepRunReason[] OutputReasons(GeneratorDriver driver) =>
        driver.GetRunResult().Results.Single().TrackedOutputSteps.SelectMany(kv => kv.Value).SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    [Fact]
    public void UnrelatedEdit_DoesNotReEmit()
    {
        var compilation = GeneratorHarness.Compile(Net);
        var driver = GeneratorHarness.Driver(track: true).RunGenerators(compilation);
        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("class Unrelated { int X; }", GeneratorHarness.ParseOptions));
        driver = driver.RunGenerators(edited);
        Assert.All(Reasons(driver, NetworkGenerator.SpecStep), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
        Assert.All(OutputReasons(driver), r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }

    [Fact]
    public void EditOfTheNetwork_IsModified()
    {
        var compilation = GeneratorHarness.Compile(Net);
        var driver = GeneratorHarness.Driver(track: true).RunGenerators(compilation);
        var tree = compilation.SyntaxTrees.Single();
        var edited = compilation.ReplaceSyntaxTree(tree, CSharpSyntaxTree.ParseText(Net.Replace("Linear(4, 3)", "Linear(4, 5)"), GeneratorHarness.ParseOptions, path: tree.FilePath));
        driver = driver.RunGenerators(edited);
        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(driver, NetworkGenerator.SpecStep));
    }

    [Fact]
    public void Specs_HoldNoSymbolsSyntaxOrCompilations()
    {
        var forbidden = new[] { typeof(ISymbol), typeof(SyntaxNode), typeof(Location), typeof(Compilation), typeof(SemanticModel), typeof(SyntaxTree) };
        var seen = new HashSet<Type>();
        var queue = new Queue<Type>(new[] { typeof(NetworkSpec), typeof(ParseResult) });
        while (queue.Count > 0)
        {
            var t = queue.Dequeue();
            if (!seen.Add(t) || t.IsPrimitive || t == typeof(string) || t.IsEnum) continue;
            Assert.DoesNotContain(forbidden, f => f.IsAssignableFrom(t));
            if (t.Namespace?.StartsWith("Compiled.Nets.Generator", StringComparison.Ordinal) != true && !t.IsGenericType) continue;
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
                queue.Enqueue(f.FieldType.IsArray ? f.FieldType.GetElementType()! : f.FieldType);
            foreach (var g in t.GetGenericArguments()) queue.Enqueue(g);
        }
        Assert.Contains(typeof(OpSpec), seen);
    }
}
