using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Compiled.Nets.Generator.Helpers
{
    /// <summary>An equatable stand-in for a <see cref="Location"/>: no syntax tree is held.</summary>
    internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
    {
        public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

        public static LocationInfo? From(Location? location) =>
            location?.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);

        public static LocationInfo? From(SyntaxNode? node) => node is null ? null : From(node.GetLocation());
    }

    /// <summary>
    /// An equatable diagnostic: descriptor id, location, message arguments (all strings) and, when a code fix can
    /// rewrite the flagged expression, the replacement text (handed to the fix in the diagnostic's properties).
    /// </summary>
    internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments, string? Replacement = null)
    {
        /// <summary>The property key under which <see cref="Replacement"/> travels (read by Compiled.Nets.CodeFixes).</summary>
        public const string ReplacementKey = "Replacement";

        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params object[] args) =>
            new(descriptor.Id, location, Array.ConvertAll(args, a => Convert.ToString(a, System.Globalization.CultureInfo.InvariantCulture) ?? "").ToEquatableArray());

        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(DiagnosticDescriptors.ById(Id), Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None,
                Replacement is null ? null : System.Collections.Immutable.ImmutableDictionary<string, string?>.Empty.Add(ReplacementKey, Replacement),
                System.Linq.Enumerable.ToArray(System.Linq.Enumerable.Cast<object>(Arguments)));
    }
}
