using System.Collections.Generic;
using System.Linq;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Model
{
    /// <summary>
    /// Per-sample shapes as the planner and the emitters write them. A shape may hold the symbolic sequence length T
    /// (<see cref="Sequence"/>, always first); sizes are then expressions of the local <c>T</c>, and arenas are laid out
    /// for T = MaxSequence so one workspace serves every length.
    /// </summary>
    internal static class Shapes
    {
        /// <summary>The symbolic sequence dimension T (<c>Dim.Sequence</c>).</summary>
        public const int Sequence = -1;

        public static bool HasSequence(IEnumerable<int> dims) => dims.Contains(Sequence);

        public static int Product(IEnumerable<int> dims) => dims.Aggregate(1, (a, b) => a * b);

        /// <summary>One dimension as emitted text: "T" or the number.</summary>
        public static string Dim(int d) => d == Sequence ? "T" : IntLiteral(d);

        /// <summary>The element count of a shape as emitted text: "768", "T * 768", "T".</summary>
        public static string Size(IEnumerable<int> dims)
        {
            var d = dims.ToList();
            int fixedPart = Product(d.Where(x => x != Sequence));
            if (!HasSequence(d)) return IntLiteral(fixedPart);
            // One factor of T per symbolic dimension (attention probabilities are [H, T, T]).
            string ts = string.Join(" * ", d.Where(x => x == Sequence).Select(_ => "T"));
            return fixedPart == 1 ? ts : $"{ts} * {IntLiteral(fixedPart)}";
        }

        /// <summary>The element count at T = MaxSequence (what an arena region must hold).</summary>
        public static long MaxSize(NetworkSpec s, IEnumerable<int> dims) => dims.Aggregate(1L, (a, x) => a * (x == Sequence ? s.MaxSequence : x));

        /// <summary>A batched shape for comments: "[B, 64, 14, 14]".</summary>
        public static string Batched(IEnumerable<int> d) => "[B" + string.Concat(d.Select(x => ", " + Dim(x))) + "]";
    }
}
