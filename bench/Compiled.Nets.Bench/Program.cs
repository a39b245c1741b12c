using System.Diagnostics;
using Compiled.Nets.Bench;

// `summary` (default): times our kernels directly and prints GFLOPS and % of the measured FMA peak.
return Summary.Run(args);
