<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r q="&quot;'&lt;&amp;&gt;" nl="a&#10;b&#9;c"><xsl:value-of select="//t"/><xsl:text>&lt;tag&gt; &amp;amp;</xsl:text></r></xsl:template>
</xsl:stylesheet>
