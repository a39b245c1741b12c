using System.Collections.Immutable;
using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Compiled.Nets.CodeFixes;
using Compiled.Nets.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using Xunit.Abstractions;

namespace Compiled.Nets.Editor.Tests;

/// <summary>
/// The seed bug in an editor: csharp-ls (a Roslyn language server, analyzers enabled) on a copy of the FashionMnist
/// sample fed 3×32×32 images. CNET0001 must reach the editor on the `128 * 7 * 7` argument with no CS9248 beside
/// it, the fix must rewrite it, and the error must clear after the edit.
/// </summary>
public class LanguageServerTests(ITestOutputHelper output)
{
    private const string Argument = "128 * 7 * 7";
    private const string FixTitle = "Change to 128 * 8 * 8";
    private const string Expected = "Fc1 expects 6272 input features (Linear(6272, 512)), but Flatten produces 8192 (128×8×8) for input 3×32×32";

    /// <summary>Where the Linear's first argument starts (the doc comment above mentions the same product).</summary>
    private static int ArgumentAt(string text) => text.IndexOf("[Linear(" + Argument, StringComparison.Ordinal) + "[Linear(".Length;

    private static string SeedBug(string source)
    {
        string edited = source.Replace("Input(1, 28, 28)", "Input(3, 32, 32)").Replace("[Conv2d(1, 64,", "[Conv2d(3, 64,");
        Assert.NotEqual(source, edited);
        Assert.Contains(Argument, edited);
        return edited;
    }

    [Fact]
    public void ACommandLineBuild_ShowsTheOneRealError_AndNothingElse()
    {
        string dir = Tools.SampleCopy(SeedBug);
        try
        {
            var (code, log) = Tools.Run("dotnet", "build -nologo -nodeReuse:false -p:UseSharedCompilation=false", dir, TimeSpan.FromMinutes(5));
            Assert.NotEqual(0, code);
            var reported = Regex.Matches(log, @"^(?<where>\S+\.cs\(\d+,\d+\)): (?<sev>error|warning) (?<id>\w+): (?<msg>.*?) \[", RegexOptions.Multiline)
                .Select(m => $"{Path.GetFileName(m.Groups["where"].Value)}: {m.Groups["sev"].Value} {m.Groups["id"].Value}: {m.Groups["msg"].Value}")
                .Distinct().ToList();
            var at = SourceText.From(File.ReadAllText(Path.Combine(dir, "ConvNet.cs"))).Lines.GetLinePosition(ArgumentAt(File.ReadAllText(Path.Combine(dir, "ConvNet.cs"))));
            int line = at.Line + 1, column = at.Character + 1;
            Assert.Equal(new[] { $"ConvNet.cs({line},{column}): error CNET0001: {Expected}" }, reported);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task CSharpLs_ShowsCNET0001_OnTheArgument_AndTheFixClearsIt()
    {
        string ls = Tools.CSharpLs();
        string dir = Tools.SampleCopy(SeedBug);
        string path = Path.Combine(dir, "ConvNet.cs");
        string uri = new Uri(path).AbsoluteUri;
        string text = File.ReadAllText(path);
        var expectedRange = RangeOf(text, ArgumentAt(text), Argument.Length);
        // csharp-ls reads its settings through workspace/configuration (section "csharp").
        using var client = new LspClient(ls, "--loglevel info", dir, (method, p) => method switch
        {
            "workspace/configuration" => new JsonArray(p!["items"]!.AsArray().Select(_ => (JsonNode?)new JsonObject { ["analyzersEnabled"] = true }).ToArray()),
            _ => null,
        });
        try
        {
            var clock = Stopwatch.StartNew();
            await client.Request("initialize", new JsonObject
            {
                ["processId"] = Environment.ProcessId,
                ["rootUri"] = new Uri(dir + "/").AbsoluteUri,
                ["capabilities"] = new JsonObject
                {
                    ["workspace"] = new JsonObject { ["configuration"] = true },
                    ["textDocument"] = new JsonObject
                    {
                        ["diagnostic"] = new JsonObject { ["dynamicRegistration"] = false },
                        ["codeAction"] = new JsonObject { ["codeActionLiteralSupport"] = new JsonObject { ["codeActionKind"] = new JsonObject { ["valueSet"] = new JsonArray("quickfix", "refactor") } } },
                    },
                },
                ["initializationOptions"] = new JsonObject { ["csharp"] = new JsonObject { ["analyzersEnabled"] = true } },
            }, TimeSpan.FromSeconds(60));
            client.Notify("initialized", new JsonObject());
            client.Notify("workspace/didChangeConfiguration", new JsonObject { ["settings"] = new JsonObject { ["csharp"] = new JsonObject { ["analyzersEnabled"] = true } } });
            client.Notify("textDocument/didOpen", new JsonObject
            {
                ["textDocument"] = new JsonObject { ["uri"] = uri, ["languageId"] = "csharp", ["version"] = 1, ["text"] = text },
            });

            // The first answer may come before the project has loaded: poll until CNET0001 arrives.
            var items = await PollDiagnostics(client, uri, d => d.Any(i => Code(i) == "CNET0001"), TimeSpan.FromMinutes(3));
            output.WriteLine($"open → CNET0001 shown: {clock.ElapsedMilliseconds} ms (includes loading the project)");
            var diagnostic = items.Single(i => Code(i) == "CNET0001")!;
            Assert.Equal(expectedRange.ToJsonString(), diagnostic["range"]!.ToJsonString());
            Assert.Equal(Expected, diagnostic["message"]!.GetValue<string>());
            Assert.DoesNotContain(items, i => Code(i) == "CS9248");
            Assert.Equal(new[] { "CNET0001" }, Errors(items));

            // The fix: what the server offers, else what a Roslyn host that loads fixers from the project's analyzer
            // assemblies computes (csharp-ls 0.28 offers only Roslyn's built-in fixers: its code actions never load
            // a project's CodeFixProviders).
            var actions = (await client.Request("textDocument/codeAction", new JsonObject
            {
                ["textDocument"] = new JsonObject { ["uri"] = uri },
                ["range"] = diagnostic["range"]!.DeepClone(),
                ["context"] = new JsonObject { ["diagnostics"] = new JsonArray(diagnostic.DeepClone()) },
            }, TimeSpan.FromSeconds(60)))?.AsArray() ?? new JsonArray();
            var titles = actions.Select(a => a?["title"]?.GetValue<string>()).ToList();
            output.WriteLine("code actions offered by csharp-ls: " + string.Join(" | ", titles));
            string fixedText = titles.Contains(FixTitle)
                ? throw new InvalidOperationException("csharp-ls now offers the fix: apply its edit here instead of the host's")
                : await FixAsRoslynHost(text);
            Assert.Equal(text.Replace("[Linear(128 * 7 * 7, 512)]", "[Linear(128 * 8 * 8, 512)]"), fixedText);

            clock.Restart();
            client.Notify("textDocument/didChange", new JsonObject
            {
                ["textDocument"] = new JsonObject { ["uri"] = uri, ["version"] = 2 },
                ["contentChanges"] = new JsonArray(new JsonObject { ["text"] = fixedText }),
            });
            items = await PollDiagnostics(client, uri, d => !d.Any(i => Code(i) == "CNET0001"), TimeSpan.FromMinutes(1));
            output.WriteLine($"didChange → CNET0001 cleared: {clock.ElapsedMilliseconds} ms");
            Assert.Empty(Errors(items));

            await client.Request("shutdown", null, TimeSpan.FromSeconds(30));
            client.Notify("exit", null);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static string? Code(JsonNode? item) => item?["code"]?.ToString();

    private static string[] Errors(IEnumerable<JsonNode?> items) =>
        items.Where(i => i?["severity"]?.GetValue<int>() == 1).Select(i => Code(i) ?? "").ToArray();

    private static async Task<List<JsonNode?>> PollDiagnostics(LspClient client, string uri, Func<List<JsonNode?>, bool> until, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        List<JsonNode?> items = new();
        while (deadline.Elapsed < timeout)
        {
            var report = await client.Request("textDocument/diagnostic", new JsonObject { ["textDocument"] = new JsonObject { ["uri"] = uri } }, timeout);
            items = report?["items"]?.AsArray().ToList() ?? new List<JsonNode?>();
            if (until(items)) return items;
            await Task.Delay(20);
        }
        throw new TimeoutException($"diagnostics did not settle within {timeout.TotalSeconds} s; last: {string.Join(", ", items.Select(Code))}\nServer log:\n{client.Log}");
    }

    private static JsonObject RangeOf(string text, int start, int length)
    {
        var lines = SourceText.From(text).Lines;
        JsonObject Pos(int at) { var p = lines.GetLinePosition(at); return new JsonObject { ["line"] = p.Line, ["character"] = p.Character }; }
        return new JsonObject { ["start"] = Pos(start), ["end"] = Pos(start + length) };
    }

    /// <summary>The analyzer's diagnostic and the CodeFixProvider, run as a Roslyn IDE host runs them on the document.</summary>
    private static async Task<string> FixAsRoslynHost(string text)
    {
        using var workspace = new AdhocWorkspace();
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "Compiled.Nets.Runtime.dll" or "Compiled.Nets.Attributes.dll")
            .Select(p => MetadataReference.CreateFromFile(p));
        var project = workspace.AddProject("Seed", LanguageNames.CSharp).AddMetadataReferences(references)
            .WithParseOptions(new CSharpParseOptions(LanguageVersion.Preview));
        var document = project.AddDocument("ConvNet.cs", SourceText.From(text));
        var compilation = (await document.Project.GetCompilationAsync())!;
        var diagnostics = await compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new NetworkAnalyzer())).GetAnalyzerDiagnosticsAsync();
        var diagnostic = diagnostics.Single(d => d.Id == "CNET0001");
        var actions = new List<CodeAction>();
        await new SizeMismatchCodeFix().RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (a, _) => actions.Add(a), CancellationToken.None));
        var action = Assert.Single(actions);
        Assert.Equal(FixTitle, action.Title);
        var changed = (await action.GetOperationsAsync(CancellationToken.None)).OfType<ApplyChangesOperation>().Single().ChangedSolution.GetDocument(document.Id)!;
        return (await changed.GetTextAsync()).ToString();
    }
}
