// autochip core DMA: AXI4 master with an 8-bit data bus (one byte per beat), INCR bursts that
// never cross a 256-byte boundary (so never a 4 KB one), one burst in flight.
//   read  (cmd_write = 0): cmd_len bytes from cmd_addr appear on rd_valid/rd_data/rd_index,
//                          rd_index counting from 0; rready is always high.
//   write (cmd_write = 1): byte i is read from the source with src_re/src_index and taken from
//                          src_data one cycle later (a registered RAM read port that holds).
// done pulses for one cycle after the last R beat / B response. Per burst of L beats this costs
// L cycles plus the address and response handshakes (autochip.predictor.core_model).
`default_nettype none
module core_dma (
    input  wire        clk,
    input  wire        rst,
    input  wire        cmd_valid,
    input  wire        cmd_write,
    input  wire [31:0] cmd_addr,
    input  wire [31:0] cmd_len,
    output wire        idle,
    output reg         done,
    output reg         rd_valid,
    output reg  [7:0]  rd_data,
    output reg  [31:0] rd_index,
    output wire        src_re,
    output wire [31:0] src_index,
    input  wire [7:0]  src_data,
    // AXI4 master
    output wire [31:0] m_axi_awaddr,
    output wire [7:0]  m_axi_awlen,
    output wire [2:0]  m_axi_awsize,
    output wire [1:0]  m_axi_awburst,
    output wire [0:0]  m_axi_awid,
    output wire        m_axi_awlock,
    output wire [3:0]  m_axi_awcache,
    output wire [2:0]  m_axi_awprot,
    output wire        m_axi_awvalid,
    input  wire        m_axi_awready,
    output wire [7:0]  m_axi_wdata,
    output wire [0:0]  m_axi_wstrb,
    output wire        m_axi_wlast,
    output wire        m_axi_wvalid,
    input  wire        m_axi_wready,
    input  wire [0:0]  m_axi_bid,
    input  wire [1:0]  m_axi_bresp,
    input  wire        m_axi_bvalid,
    output wire        m_axi_bready,
    output wire [31:0] m_axi_araddr,
    output wire [7:0]  m_axi_arlen,
    output wire [2:0]  m_axi_arsize,
    output wire [1:0]  m_axi_arburst,
    output wire [0:0]  m_axi_arid,
    output wire        m_axi_arlock,
    output wire [3:0]  m_axi_arcache,
    output wire [2:0]  m_axi_arprot,
    output wire        m_axi_arvalid,
    input  wire        m_axi_arready,
    input  wire [0:0]  m_axi_rid,
    input  wire [7:0]  m_axi_rdata,
    input  wire [1:0]  m_axi_rresp,
    input  wire        m_axi_rlast,
    input  wire        m_axi_rvalid,
    output wire        m_axi_rready
);
    localparam [2:0] S_IDLE = 3'd0, S_AR = 3'd1, S_R = 3'd2, S_AW = 3'd3, S_W = 3'd4,
                     S_B = 3'd5;

    reg  [2:0]  state;
    reg  [31:0] addr;
    reg  [31:0] left;    // bytes not yet transferred, this burst included
    reg  [31:0] index;   // byte index of the next beat
    reg  [8:0]  beats;   // beats left in the write burst

    // burst length: up to the next 256-byte boundary, at most what is left
    wire [8:0]  to_edge = 9'd256 - {1'b0, addr[7:0]};
    wire [8:0]  blen    = (left < {23'd0, to_edge}) ? left[8:0] : to_edge;
    wire [7:0]  alen    = blen[7:0] - 8'd1;
    wire        wfire   = (state == S_W) & m_axi_wready;

    assign idle          = (state == S_IDLE);
    assign m_axi_awaddr  = addr;
    assign m_axi_awlen   = alen;
    assign m_axi_awsize  = 3'd0;
    assign m_axi_awburst = 2'b01;
    assign m_axi_awid    = 1'b0;
    assign m_axi_awlock  = 1'b0;
    assign m_axi_awcache = 4'd0;
    assign m_axi_awprot  = 3'd0;
    assign m_axi_awvalid = (state == S_AW);
    assign m_axi_wdata   = src_data;
    assign m_axi_wstrb   = 1'b1;
    assign m_axi_wlast   = (beats == 9'd1);
    assign m_axi_wvalid  = (state == S_W);
    assign m_axi_bready  = (state == S_B);
    assign m_axi_araddr  = addr;
    assign m_axi_arlen   = alen;
    assign m_axi_arsize  = 3'd0;
    assign m_axi_arburst = 2'b01;
    assign m_axi_arid    = 1'b0;
    assign m_axi_arlock  = 1'b0;
    assign m_axi_arcache = 4'd0;
    assign m_axi_arprot  = 3'd0;
    assign m_axi_arvalid = (state == S_AR);
    assign m_axi_rready  = (state == S_R);
    assign src_re        = (state == S_AW) | wfire;
    assign src_index     = wfire ? index + 32'd1 : index;

    wire unused_ok = &{1'b0, m_axi_bid, m_axi_bresp, m_axi_rid, m_axi_rresp};

    always @(posedge clk) begin
        if (rst) begin
            state    <= S_IDLE;
            addr     <= 32'd0;
            left     <= 32'd0;
            index    <= 32'd0;
            beats    <= 9'd0;
            done     <= 1'b0;
            rd_valid <= 1'b0;
            rd_data  <= 8'd0;
            rd_index <= 32'd0;
        end else begin
            done     <= 1'b0;
            rd_valid <= 1'b0;
            case (state)
                S_IDLE: begin
                    if (cmd_valid) begin
                        addr  <= cmd_addr;
                        left  <= cmd_len;
                        index <= 32'd0;
                        if (cmd_len == 32'd0) begin
                            done <= 1'b1;
                        end else begin
                            state <= cmd_write ? S_AW : S_AR;
                        end
                    end
                end
                S_AR: begin
                    if (m_axi_arready) begin
                        state <= S_R;
                    end
                end
                S_R: begin
                    if (m_axi_rvalid) begin
                        rd_valid <= 1'b1;
                        rd_data  <= m_axi_rdata;
                        rd_index <= index;
                        index    <= index + 32'd1;
                        addr     <= addr + 32'd1;
                        left     <= left - 32'd1;
                        if (m_axi_rlast) begin
                            if (left == 32'd1) begin
                                state <= S_IDLE;
                                done  <= 1'b1;
                            end else begin
                                state <= S_AR;
                            end
                        end
                    end
                end
                S_AW: begin
                    if (m_axi_awready) begin
                        state <= S_W;
                        beats <= blen;
                    end
                end
                S_W: begin
                    if (m_axi_wready) begin
                        index <= index + 32'd1;
                        addr  <= addr + 32'd1;
                        left  <= left - 32'd1;
                        beats <= beats - 9'd1;
                        if (beats == 9'd1) begin
                            state <= S_B;
                        end
                    end
                end
                S_B: begin
                    if (m_axi_bvalid) begin
                        if (left == 32'd0) begin
                            state <= S_IDLE;
                            done  <= 1'b1;
                        end else begin
                            state <= S_AW;
                        end
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
`default_nettype wire
