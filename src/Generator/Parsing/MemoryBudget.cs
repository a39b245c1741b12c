using System;
using System.Globalization;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Planning;
using Microsoft.CodeAnalysis;

namespace Compiled.Nets.Generator.Parsing
{
    /// <summary>
    /// <c>[MemoryBudget(MiB, Batch = …, Optimizer = …, Training = …)]</c>: the network's memory plan at that batch against
    /// the budget; over it, CNET0021 at the attribute names the total, its parts and the largest workspace regions. A
    /// budget that is not a positive number or a negative batch is CNET0014 there.
    /// </summary>
    internal static class MemoryBudget
    {
        public static DiagnosticInfo? Check(INamedTypeSymbol type, NetworkSpec spec)
        {
            var a = type.GetAttributes().FirstOrDefault(x => x.AttributeClass?.ToDisplayString() == "Compiled.Nets.MemoryBudgetAttribute");
            if (a is null) return null;
            var location = LocationInfo.From(a.ApplicationSyntaxReference?.GetSyntax());
            double budget = a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Value is double d ? d : double.NaN;
            int batch = a.NamedArguments.Where(n => n.Key == "Batch").Select(n => n.Value.Value).OfType<int>().FirstOrDefault();
            int optimizer = a.NamedArguments.Where(n => n.Key == "Optimizer").Select(n => n.Value.Value).OfType<int>().Select(v => (int?)v).FirstOrDefault() ?? 3;
            bool training = a.NamedArguments.Where(n => n.Key == "Training").Select(n => n.Value.Value).OfType<bool>().Select(v => (bool?)v).FirstOrDefault() ?? true;
            if (!(budget > 0) || double.IsInfinity(budget))
                return DiagnosticInfo.Create(DiagnosticDescriptors.InvalidArgument, location, "MemoryBudget", $"the budget must be a positive number of MiB, got {budget.ToString(CultureInfo.InvariantCulture)}");
            if (batch < 0)
                return DiagnosticInfo.Create(DiagnosticDescriptors.InvalidArgument, location, "MemoryBudget", $"Batch must be positive (or 0 for MaxBatch), got {batch}");
            if (batch == 0) batch = spec.MaxBatch;

            var memory = MemoryPlan.Of(spec, Planner.Build(spec));
            long need = memory.TotalBytes(batch, optimizer, training);
            if (need <= budget * 1048576) return null;
            return DiagnosticInfo.Create(DiagnosticDescriptors.MemoryBudgetExceeded, location, spec.TypeName, MemoryPlan.MiB(need),
                training ? "train with " + MemoryPlan.OptimizerName(optimizer) : "infer", batch, memory.Parts(batch, optimizer, training),
                budget.ToString("0.##", CultureInfo.InvariantCulture) + " MiB", memory.Largest(batch, training));
        }
    }
}
