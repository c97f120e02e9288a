<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:array="http://www.w3.org/2005/xpath-functions/array" exclude-result-prefixes="#all">
  <!-- xsl:number with the 2.0 select attribute, numbering nodes other than the context. -->
  <xsl:template match="/meldungen">
    <r>
      <xsl:for-each select="satz[@typ = 'D']">
        <d az="{@az}" n="{position()}"><xsl:number select="." count="satz[@typ = 'D']" level="any" format="0001"/></d>
      </xsl:for-each>
      <letzter><xsl:number select="satz[last()]" format="1"/></letzter>
    </r>
  </xsl:template>
</xsl:stylesheet>
