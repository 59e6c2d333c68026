// autochip delay line: q is d delayed by DEPTH (>= 1) enabled clock cycles.
// rst zeroes every stage; with en low every stage holds.
`default_nettype none
module autochip_delay #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 1
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             en,
    input  wire [WIDTH-1:0] d,
    output wire [WIDTH-1:0] q
);
    wire [(DEPTH+1)*WIDTH-1:0] chain;
    assign chain[WIDTH-1:0] = d;

    genvar k;
    generate
        for (k = 0; k < DEPTH; k = k + 1) begin : g_stage
            reg [WIDTH-1:0] r;
            always @(posedge clk) begin
                if (rst) begin
                    r <= {WIDTH{1'b0}};
                end else if (en) begin
                    r <= chain[k*WIDTH +: WIDTH];
                end
            end
            assign chain[(k+1)*WIDTH +: WIDTH] = r;
        end
    endgenerate

    assign q = chain[DEPTH*WIDTH +: WIDTH];
endmodule
`default_nettype wire
