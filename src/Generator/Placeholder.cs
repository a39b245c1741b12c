namespace Compiled.Nets.Generator; internal static class Placeholder {}
