using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.Generator.Tests;

/// <summary>
/// The seed ConvNet is declared where each project compiles it (the sample, the benchmarks, the network and GPU tests):
/// the copies must stay the same network — attributes, layer properties and Forward — whatever the class is called.
/// </summary>
public class SeedNetworkCopyTests
{
    private static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Compiled.Nets.sln"))) dir = dir.Parent;
        return dir!.FullName;
    }

    /// <summary>The class's attributes and members as tokens (no trivia, so layout and comments do not count).</summary>
    private static string Declaration(string relativePath, string className)
    {
        var tree = CSharpSyntaxTree.ParseText(File.ReadAllText(Path.Combine(Root(), relativePath)));
        var type = tree.GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>().Single(c => c.Identifier.Text == className);
        var parts = type.AttributeLists.Select(a => a.ToString()).Concat(type.Members.Select(m => string.Join(" ", m.DescendantTokens().Select(t => t.Text))));
        return string.Join("\n", parts);
    }

    [Theory]
    [InlineData("bench/Compiled.Nets.Bench/ConvNet.cs", "ConvNetCompiled")]
    [InlineData("tests/Compiled.Nets.Network.Tests/Networks.cs", "ConvNet")]
    [InlineData("tests/Compiled.Nets.Gpu.Tests/Networks.cs", "ConvNet")]
    [InlineData("bench/Compiled.Nets.Bench.Gpu/Networks.cs", "ConvNet28")]
    public void Copy_IsTheSampleNetwork(string path, string className) =>
        Assert.Equal(Declaration("samples/FashionMnist/ConvNet.cs", "ConvNet"), Declaration(path, className));

    [Fact]
    public void SeedBug_IsTheSampleWithCifarInputAndItsWrongFlattenedSize()
    {
        var sample = Declaration("samples/FashionMnist/ConvNet.cs", "ConvNet");
        var tree = CSharpSyntaxTree.ParseText(SeedNetworks.CifarSeedBug);
        var type = tree.GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>().Single();
        var bug = string.Join("\n", type.AttributeLists.Select(a => a.ToString()).Concat(type.Members.Select(m => string.Join(" ", m.DescendantTokens().Select(t => t.Text)))));
        Assert.Equal(sample.Replace("Input(1, 28, 28)", "Input(3, 32, 32)").Replace("Conv2d ( 1 , 64", "Conv2d ( 3 , 64"), bug);
    }
}
