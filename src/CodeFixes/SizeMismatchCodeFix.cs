using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Nets.CodeFixes
{
    /// <summary>
    /// CNET0001 (a layer's size does not match its input): rewrites the flagged attribute argument to the size the
    /// previous op produces, e.g. <c>[Linear(128 * 7 * 7, 512)]</c> → <c>[Linear(128 * 8 * 8, 512)]</c>; CNET0003 (heads
    /// that do not divide the hidden size): rewrites the head count to the nearest divisor. The generator computes the
    /// replacement (it knows the shapes) and hands it over in the diagnostic's "Replacement" property.
    /// </summary>
    [ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(SizeMismatchCodeFix)), Shared]
    public sealed class SizeMismatchCodeFix : CodeFixProvider
    {
        private const string ReplacementKey = "Replacement";

        /// <inheritdoc/>
        public override ImmutableArray<string> FixableDiagnosticIds => ImmutableArray.Create("CNET0001", "CNET0003");

        /// <inheritdoc/>
        public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

        /// <inheritdoc/>
        public override async Task RegisterCodeFixesAsync(CodeFixContext context)
        {
            var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
            if (root is null) return;
            foreach (var diagnostic in context.Diagnostics)
            {
                if (!diagnostic.Properties.TryGetValue(ReplacementKey, out var replacement) || string.IsNullOrEmpty(replacement)) continue;
                var node = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);
                var expression = node as ExpressionSyntax ?? (node as AttributeArgumentSyntax)?.Expression ?? node.FirstAncestorOrSelf<ExpressionSyntax>();
                if (expression is null || expression.FirstAncestorOrSelf<AttributeArgumentSyntax>() is null) continue;
                string title = $"Change to {replacement}";
                context.RegisterCodeFix(
                    CodeAction.Create(title, ct => Replace(context.Document, expression, replacement!, ct), equivalenceKey: title),
                    diagnostic);
            }
        }

        private static async Task<Document> Replace(Document document, ExpressionSyntax expression, string replacement, CancellationToken ct)
        {
            var root = await document.GetSyntaxRootAsync(ct).ConfigureAwait(false);
            if (root is null) return document;
            var newExpression = SyntaxFactory.ParseExpression(replacement).WithTriviaFrom(expression);
            return document.WithSyntaxRoot(root.ReplaceNode(expression, newExpression));
        }
    }
}
