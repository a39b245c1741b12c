using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Model;

namespace Compiled.Nets.Generator.Planning
{
    /// <summary>Collects arena regions in order; ops add what they save for backward through it.</summary>
    internal sealed class RegionBuilder
    {
        private readonly NetworkSpec _spec;
        internal readonly List<(string Name, string PerSample, long Max, bool Gradient)> Activations = new();
        internal readonly List<IntRegion> Ints = new();
        internal readonly List<StatRegion> Stats = new();

        public RegionBuilder(NetworkSpec spec) { _spec = spec; }

        /// <summary>A float region of <paramref name="shape"/> per sample; <paramref name="gradient"/>: backward keeps its gradient too.</summary>
        public void Add(string name, IEnumerable<int> shape, bool gradient = false)
        {
            var dims = shape.ToList();
            Activations.Add((name, Shapes.Size(dims), Shapes.MaxSize(_spec, dims), gradient));
        }

        /// <summary>An integer region of <paramref name="shape"/> per sample (no sequence dimension).</summary>
        public void AddInts(string name, IEnumerable<int> shape) => Ints.Add(new IntRegion(name, Shapes.Product(shape)));

        public void AddStats(string name, int size) => Stats.Add(new StatRegion(name, size));
    }
}
