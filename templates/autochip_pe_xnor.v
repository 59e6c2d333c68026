// autochip processing element: binary (+-1) dot product of V packed lanes.
//   acc <= acc + V - 2 * popcount(a ^ w)   (bit 1 encodes +1, bit 0 encodes -1)
// Control as autochip_pe_mac. ACC_BITS must hold +-V (autochip emit checks the depth).
`default_nettype none
module autochip_pe_xnor #(
    parameter integer V        = 8,
    parameter integer ACC_BITS = 32
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       en,
    input  wire                       clr,
    input  wire                       valid,
    input  wire [V-1:0]               a,
    input  wire [V-1:0]               w,
    output reg  signed [ACC_BITS-1:0] acc
);
    localparam integer C_BITS = $clog2(V + 1);  // popcount width
    localparam integer T_BITS = C_BITS + 1;      // signed term width, holds -V..V
    localparam [T_BITS-1:0] V_T = V[T_BITS-1:0];

    wire [V-1:0] diff = a ^ w;
    reg  [C_BITS-1:0] ones;
    integer i;

    always @* begin
        ones = {C_BITS{1'b0}};
        for (i = 0; i < V; i = i + 1) begin
            ones = ones + {{(C_BITS - 1){1'b0}}, diff[i]};
        end
    end

    wire [T_BITS-1:0]   t_small = V_T - {ones, 1'b0};
    wire [ACC_BITS-1:0] term;

    generate
        if (ACC_BITS > T_BITS) begin : g_extend
            assign term = {{(ACC_BITS - T_BITS){t_small[T_BITS-1]}}, t_small};
        end else begin : g_exact
            assign term = t_small;
        end
    endgenerate

    always @(posedge clk) begin
        if (rst) begin
            acc <= {ACC_BITS{1'b0}};
        end else if (en) begin
            if (clr) begin
                acc <= valid ? $signed(term) : {ACC_BITS{1'b0}};
            end else if (valid) begin
                acc <= acc + $signed(term);
            end
        end
    end
endmodule
`default_nettype wire
